"""The message catalogue: every sentence a person reads, in English and in Chinese.

Role: one typed table (:data:`MESSAGES`, key → :class:`Message` holding both languages)
that the homepage, the admin page, the credential doctor and ``/token/check`` take their
text from, so no sentence is written twice in code and neither language can lack one (a
test checks that every key has both, with the same ``{placeholders}``). No Babel or
gettext: the project speaks exactly two languages and the table is small.

Choosing the language:

* :func:`negotiate` for HTTP: ``?lang=zh|en`` first, then ``Accept-Language``, else English;
* :func:`lang_from_env` for the command line: ``LANG=zh_CN.UTF-8`` → ``"zh"``.

:func:`text` formats a message with ``str.format`` fields. Keys under ``page.`` hold
trusted HTML written here (the homepage marks it safe and escapes the fields it fills
in: see :mod:`gateway.system.views`); every other message is plain text.

Endpoint lines are the one exception to "both languages in one entry": their English is
the first line of the view's docstring (read by :mod:`gateway.system.views`), so only the
Chinese line lives here, in :data:`ENDPOINT_HELP_ZH`, keyed by endpoint name.

This module reads nothing from the environment (:mod:`gateway.config` does that) and
imports no web framework.
"""

from __future__ import annotations

from string import Formatter
from typing import Literal, NamedTuple, get_args

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = get_args(Lang)
DEFAULT_LANG: Lang = "en"
#: Each language named in itself, for the language switch.
LANGUAGE_NAMES: dict[Lang, str] = {"en": "English", "zh": "中文"}
#: The BCP 47 tag for ``<html lang>`` and ``Content-Language``.
HTML_LANG: dict[Lang, str] = {"en": "en", "zh": "zh-CN"}
#: Spellings people type in ``?lang=`` that are not language tags.
_ALIASES: dict[str, Lang] = {"cn": "zh"}
#: Locale names that mean "no locale": fall back to English.
_NO_LOCALE = frozenset({"", "c", "posix"})


class Message(NamedTuple):
    """One message in both languages."""

    en: str
    zh: str

    def get(self, lang: Lang) -> str:
        return self.zh if lang == "zh" else self.en


# --- the credential doctor --------------------------------------------------------------

_DOCTOR_STAGES: dict[str, Message] = {
    "doctor.stage.parse_token": Message("parse token", "解析 token"),
    "doctor.stage.user_info": Message("user info", "用户信息"),
    "doctor.stage.device_registration": Message("device registration", "设备注册"),
    "doctor.stage.credits": Message("credits", "积分"),
    "doctor.stage.send_message": Message("send message", "发送消息"),
    "doctor.stage.poll_to_finished": Message("poll to finished", "轮询到完成"),
    "doctor.stage.delete_chat": Message("delete chat", "删除对话"),
    "doctor.stage.surface_probe": Message("surface probe", "接口探测"),
    "doctor.stage.session_config": Message("session config", "会话配置"),
    "doctor.stage.agent_discovery": Message("agent discovery", "查找 Agent"),
    "doctor.stage.create_session": Message("create session", "创建会话"),
    "doctor.stage.stream_answer": Message("stream answer", "流式接收回答"),
    "doctor.stage.archive_session": Message("archive session", "归档会话"),
    "doctor.stage.signed_in": Message("signed in", "登录状态"),
    "doctor.stage.quota": Message("quota", "额度"),
    "doctor.stage.code_endpoint": Message("code endpoint", "Code 接口"),
    "doctor.stage.count_tokens": Message("count tokens", "统计 token 数"),
    "doctor.stage.web_token_on_code": Message("web token on code", "Web token 用于 Code 接口"),
}

_DOCTOR_CAUSES: dict[str, Message] = {
    "doctor.cause.log_in_again": Message(
        "the sign-in is gone: log in again (python -m gateway login, or the admin page)",
        "登录已失效：请重新登录（python -m gateway login，或在管理后台）",
    ),
    "doctor.cause.web_token_not_on_code": Message(
        "the code endpoint does not take this web token: auto mode uses the web surfaces for it "
        "(log in with python -m gateway login to use the code surface)",
        "Code 接口不接受这个 Web token：自动模式对它使用 Web 接口（用 python -m gateway login 登录即可使用 Code 接口）",
    ),
    "doctor.cause.code_token_refused": Message(
        "MiniMax Code refused this access token (it lasts about an hour, or it was revoked): sign in again",
        "MiniMax Code 拒绝了这个访问令牌（有效期约一小时，或已被注销）：请重新登录",
    ),
    "doctor.cause.quota_used": Message(
        "the Token Plan quota is used up until its window resets",
        "Token Plan 额度已用完，要等额度窗口重置",
    ),
    "doctor.cause.expired": Message(
        "the token has expired: log in again and copy a fresh _token",
        "token 已过期：请重新登录，再复制一份新的 _token",
    ),
    "doctor.cause.malformed": Message(
        "the credential is malformed: paste realUserID+_token (or the bare _token)",
        "凭证格式不对：请粘贴 realUserID+_token（或只粘贴 _token）",
    ),
    "doctor.cause.signature": Message(
        "signature mismatch: the web app's signing changed (try MINIMAX_SIGNATURE=jwt, or update)",
        "签名不匹配：网页端的签名方式变了（可以试试 MINIMAX_SIGNATURE=jwt，或者更新本项目）",
    ),
    "doctor.cause.wrong_user_or_revoked": Message(
        "wrong realUserID for this token, or the token was revoked (log out/in resets it)",
        "realUserID 和这个 token 对不上，或者 token 已被注销（退出再登录后旧 token 就失效了）",
    ),
    "doctor.cause.revoked": Message(
        "the token is expired or revoked, or its user.id is not the realUserID (paste realUserID+_token)",
        "token 已过期或被注销，或者它的 user.id 不是 realUserID（请粘贴 realUserID+_token）",
    ),
    "doctor.cause.no_credits": Message(
        "no credits: wait for the daily refill or use another account",
        "积分用完了：等每日额度恢复，或者换一个账号",
    ),
    "doctor.cause.busy": Message(
        "the account is busy with another generation (a browser tab?)",
        "账号正忙于另一个生成任务（是不是浏览器里还开着对话？）",
    ),
    "doctor.cause.unreachable": Message(
        "the upstream could not be reached: check MINIMAX_BASE_URL and the network",
        "连不上上游：请检查 MINIMAX_BASE_URL 和网络",
    ),
    "doctor.cause.timeout": Message(
        "the upstream is too slow or hung",
        "上游太慢，或者卡住了",
    ),
    "doctor.cause.server_error": Message(
        "the upstream is failing with server errors: try again later",
        "上游一直返回服务器错误：请稍后再试",
    ),
    "doctor.cause.wrong_user_id": Message(
        "wrong realUserID: paste the bare _token and let the gateway learn it, or copy the "
        "user_id= of any request to the site (DevTools → Network)",
        "realUserID 不对：直接粘贴 _token 让网关自己查，或者从任意一个发往该站的请求里"
        "复制 user_id=（开发者工具 → Network）",
    ),
    "doctor.cause.unexpected": Message(
        "the upstream answered something unexpected (the protocol may have changed)",
        "上游返回了意料之外的内容（协议可能变了）",
    ),
    "doctor.cause.no_surface": Message(
        "neither surface answered: the matrix API refused the token and the session API path "
        "was not found (see MINIMAX_SURFACE, MINIMAX_SESSION_PREFIXES)",
        "两种接口都不通：matrix 接口拒绝了这个 token，session 接口的路径也找不到"
        "（见 MINIMAX_SURFACE、MINIMAX_SESSION_PREFIXES）",
    ),
    "doctor.cause.surface_refused": Message(
        "this surface refused a token the account accepts (see MINIMAX_SURFACE)",
        "这种接口拒绝了一个账号本身有效的 token（见 MINIMAX_SURFACE）",
    ),
    "doctor.cause.user_id_unknown": Message(
        "the realUserID could not be learned from the user-info call",
        "无法从用户信息接口得知 realUserID",
    ),
}

_DOCTOR_REPORT: dict[str, Message] = {
    "doctor.likely_cause": Message("likely cause: {cause}", "可能原因：{cause}"),
    "doctor.live": Message("LIVE: the credential works end to end on the {surface} surface.",
                           "可用：凭证在 {surface} 接口上全流程正常。"),
    "doctor.surface_works": Message("{surface} surface: works", "{surface} 接口：正常"),
    "doctor.surface_fails": Message("{surface} surface: fails at '{stage}'", "{surface} 接口：卡在「{stage}」"),
    "doctor.signing": Message("signing: {variant}", "签名方式：{variant}"),
    "doctor.constant.default": Message("signing constant {name}: default (captured {date}, {age} ago)",
                                       "签名常量 {name}：默认值（{date} 抓包，{age}前）"),
    "doctor.constant.setting": Message("signing constant {name}: setting {env}", "签名常量 {name}：设置项 {env}"),
    "doctor.constant.bundle": Message("signing constant {name}: bundle {script} (read {age} ago)",
                                      "签名常量 {name}：网页脚本包 {script}（{age}前读取）"),
    "doctor.not_live": Message("NOT LIVE: failed at '{stage}'.", "不可用：卡在「{stage}」这一步。"),
}

# --- the homepage (HTML) ------------------------------------------------------------------

_MINIMAX_LINK = '<a href="https://agent.minimaxi.com" rel="noreferrer">{text}</a>'

_PAGE: dict[str, Message] = {
    "page.description": Message(
        "{name}: use your own MiniMax Agent account from OpenAI, Anthropic and Gemini clients.",
        "{name}：在 OpenAI、Anthropic、Gemini 客户端里使用你自己的 MiniMax Agent 账号。",
    ),
    "page.lead": Message(
        "A personal gateway that lets you use <strong>your own MiniMax Agent web account</strong> ("
        + _MINIMAX_LINK.format(text="agent.minimaxi.com")
        + ") from clients that speak the OpenAI, Anthropic or Gemini API: the official SDKs, "
        "Claude Code, gemini-cli, Chatbox, Dify, curl.",
        "一个自建的个人网关：让支持 OpenAI、Anthropic 或 Gemini API 的客户端（官方 SDK、Claude Code、"
        "gemini-cli、Chatbox、Dify、curl）直接用上<strong>你自己的 MiniMax Agent 网页账号</strong>（"
        + _MINIMAX_LINK.format(text="agent.minimaxi.com")
        + "）。",
    ),
    "page.address": Message("This server's address:", "本服务地址："),
    "page.language": Message("Language", "语言"),
    "page.contents": Message("Contents", "目录"),
    "page.copy": Message("Copy", "复制"),
    "page.copied": Message("Copied", "已复制"),
    "page.copy_refused": Message("Press Ctrl+C", "请按 Ctrl+C"),
    "page.copy_address": Message("Copy this server's address", "复制本服务地址"),
    "page.copy_example": Message("Copy the {title} example", "复制「{title}」示例"),
    "page.copy_gemini_cli": Message("Copy the gemini-cli commands", "复制 gemini-cli 命令"),
    "page.copy_gemini_settings": Message("Copy the gemini-cli settings", "复制 gemini-cli 配置"),
    "page.copy_codex": Message("Copy the Codex commands", "复制 Codex 命令"),
    "page.copy_codex_config": Message("Copy the Codex provider", "复制 Codex 的 provider 配置"),
    "page.disclaimer": Message(
        "<strong>Personal use only.</strong> This gateway talks to the web API of a service you "
        "have an account with, on your own behalf, with your own account. It is not affiliated "
        "with or endorsed by MiniMax. Respect MiniMax's terms of service; do not resell access, "
        "share your credentials or run this as a public service.",
        "<strong>仅限个人使用。</strong>本网关以你自己的名义、用你自己的账号，调用你已注册的服务的网页接口；"
        "它与 MiniMax 官方无关，也没有得到官方认可。请遵守 MiniMax 的服务条款：不要转售访问权限，"
        "不要分享凭证，也不要把它当成公共服务对外开放。",
    ),
    "page.credential.title": Message("1. Get a credential", "1. 获取凭证"),
    "page.credential.login": Message(
        "Log in at " + _MINIMAX_LINK.format(text="https://agent.minimaxi.com") + " in a desktop browser.",
        "用电脑上的浏览器登录 " + _MINIMAX_LINK.format(text="https://agent.minimaxi.com") + "。",
    ),
    "page.credential.storage": Message(
        "Open the developer tools (<kbd>F12</kbd>) → <em>Application</em> (Chrome, Edge) or "
        "<em>Storage</em> (Firefox) → <em>Local Storage</em> → <code>https://agent.minimaxi.com</code>.",
        "打开开发者工具（<kbd>F12</kbd>）→ <em>Application（应用）</em>（Chrome、Edge）或 "
        "<em>Storage（存储）</em>（Firefox）→ <em>Local Storage</em> → <code>https://agent.minimaxi.com</code>。",
    ),
    "page.credential.token": Message(
        "Copy the value of <code>_token</code>: a JWT, starting with <code>eyJ</code>. That alone "
        "is your API key: the gateway learns your realUserID from the account's user info and "
        "remembers it.",
        "复制 <code>_token</code> 的值：一串以 <code>eyJ</code> 开头的 JWT。光有它就能当 API key 用："
        "网关会通过用户信息接口查出你的 realUserID，并缓存下来。",
    ),
    "page.credential.user_id": Message(
        "Or give the realUserID yourself: <code>realUserID+_token</code>, for example "
        "<code>123456789012345678+eyJhbGciOi…</code>. The realUserID (a long number; keep it as "
        "text) is inside <code>user_detail_agent</code> in Local Storage; newer builds of the "
        "site may not have that entry: then open <em>Network</em>, click any request to the "
        "site and read its <code>user_id=</code> query parameter.",
        "也可以自己带上 realUserID，写成 <code>realUserID+_token</code>，例如 "
        "<code>123456789012345678+eyJhbGciOi…</code>。realUserID 是一长串数字（请当文本保存），"
        "在 Local Storage 的 <code>user_detail_agent</code> 里；新版网页可能已经没有这一项，"
        "这时打开 <em>Network（网络）</em>面板，随便点开一个发往该站的请求，"
        "查询参数里的 <code>user_id=</code> 就是它。",
    ),
    "page.credential.placeholder": Message(
        "The examples below write the key as <code class=\"ph\">{key}</code>: put your "
        "<code>_token</code> (or <code>realUserID+_token</code>) in its place.",
        "下面的示例把 key 写作 <code class=\"ph\">{key}</code>，换成你的 <code>_token</code>"
        "（或 <code>realUserID+_token</code>）即可。",
    ),
    "page.credential.pool": Message(
        "To pool several accounts, join their credentials with commas: "
        "<code>CRED1,CRED2,CRED3</code>. Each account runs one answer at a time; a request "
        "waits for a free one.",
        "要把多个账号放进一个池子，用英文逗号把凭证连起来：<code>CRED1,CRED2,CRED3</code>。"
        "每个账号同一时间只生成一个回答，请求会等到有空闲账号为止。",
    ),
    "page.clients.title": Message("2. Connect a client", "2. 接入客户端"),
    "page.clients.intro": Message(
        "Every example already points at this server. Replace <code class=\"ph\">{key}</code> "
        "with your credential.",
        "每个示例都已经指向本服务，把 <code class=\"ph\">{key}</code> 换成你的凭证就行。",
    ),
    "page.clients.curl": Message("curl (streamed)", "curl（流式）"),
    "page.clients.gemini_once": Message(
        "Once: <code>~/.gemini/settings.json</code> must select API-key authentication (merge "
        "this into the file if you already have one):",
        "先做一次：在 <code>~/.gemini/settings.json</code> 里选用 API key 认证"
        "（已经有这个文件的话，把下面这段合并进去）：",
    ),
    "page.clients.gemini_then": Message("Then:", "然后："),
    "page.clients.codex_once": Message(
        "Once: add this provider to <code>~/.codex/config.toml</code> (through its <code>auth</code> "
        "command Codex also gets each model's context window and its freeform apply_patch tool):",
        "先做一次：把这个 provider 加进 <code>~/.codex/config.toml</code>（通过 <code>auth</code> "
        "命令，Codex 还会拿到每个模型的上下文窗口和自由格式的 apply_patch 工具）：",
    ),
    "page.clients.reachable": Message(
        "Dify, Chatbox and other apps in a container or on another machine need an address "
        "they can reach: <code>localhost</code> there is not this machine.",
        "Dify、Chatbox 等应用如果跑在容器里或另一台机器上，要填它们访问得到的地址："
        "在那边，<code>localhost</code> 指的可不是这台机器。",
    ),
    "page.models.title": Message("Models", "模型"),
    "page.models.list": Message(
        "Advertised: {models} (the first is the default). Any other model name is accepted and "
        "mapped to the default, so clients that insist on <code>gpt-4o</code>, "
        "<code>claude-…</code> or <code>gemini-…</code> work too.",
        "对外提供：{models}（第一个是默认模型）。其他任何模型名也照收不误，都映射到默认模型，"
        "所以非要填 <code>gpt-4o</code>、<code>claude-…</code> 或 <code>gemini-…</code> 的客户端也能用。",
    ),
    "page.list_separator": Message(", ", "、"),
    "page.endpoints.title": Message("Endpoints", "接口"),
    "page.endpoints.openapi": Message(
        "Machine-readable: the OpenAPI 3.1 document at",
        "机器可读的接口描述：OpenAPI 3.1 文档见",
    ),
    "page.endpoints.intro": Message(
        "Read from this server's routes. Routes that answer GET also answer HEAD.",
        "直接读取自本服务的路由表。支持 GET 的路由也都支持 HEAD。",
    ),
    "page.endpoints.method": Message("Method", "方法"),
    "page.endpoints.path": Message("Path", "路径"),
    "page.endpoints.help": Message("What it does", "作用"),
    "page.footer": Message(
        "{name} is a self-hosted, personal-use gateway, not affiliated with MiniMax. Errors "
        "come back in each API's own format; token counts are estimates.",
        "{name} 是自建、仅供个人使用的网关，与 MiniMax 官方无关。错误按各家 API 自己的格式返回；"
        "token 数是估算值。",
    ),
}

# --- the admin page (plain text: the template escapes it) ---------------------------------

_ADMIN: dict[str, Message] = {
    "admin.title": Message("Admin", "管理后台"),
    "admin.language": Message("Language", "语言"),
    "admin.login.title": Message("Admin login", "管理后台登录"),
    "admin.login.intro": Message(
        "Enter the admin key (GATEWAY_ADMIN_KEY) to see this gateway's accounts, client keys and traffic.",
        "输入管理密钥（GATEWAY_ADMIN_KEY），查看本网关的账号、客户端 key 和流量。",
    ),
    "admin.login.key": Message("Admin key", "管理密钥"),
    "admin.login.submit": Message("Log in", "登录"),
    "admin.login.refused": Message("That is not the admin key.", "管理密钥不对。"),
    "admin.logout": Message("Log out", "退出登录"),
    "admin.refresh": Message("Refresh", "刷新"),
    "admin.generated": Message("Data as of {time}", "数据时间：{time}"),
    "admin.mode": Message("Mode", "模式"),
    "admin.warning": Message("Warning", "警告"),
    "admin.mode.keys": Message(
        "client keys: callers present one of this gateway's keys and use its server-side accounts",
        "客户端 key 模式：调用方出示本网关的 key，使用服务端的账号",
    ),
    "admin.mode.personal": Message(
        "personal: callers bring their own MiniMax credential",
        "个人模式：调用方自带 MiniMax 凭证",
    ),
    "admin.accounts.title": Message("Accounts", "账号"),
    "admin.accounts.empty": Message("No accounts seen yet.", "还没有见过任何账号。"),
    "admin.accounts.account": Message("Account", "账号"),
    "admin.accounts.state": Message("State", "状态"),
    "admin.accounts.in_flight": Message("In flight", "进行中"),
    "admin.accounts.last_error": Message("Last error", "最近错误"),
    "admin.accounts.credits": Message("Credits", "积分"),
    "admin.accounts.answers_today": Message("Answers today", "今日回答"),
    "admin.accounts.surface": Message("Surface", "接口"),
    "admin.state.free": Message("free", "空闲"),
    "admin.state.busy": Message("busy", "忙碌"),
    "admin.state.cooling": Message("cooling", "冷却中"),
    "admin.state.suspect": Message("suspect", "可疑"),
    "admin.state.dead": Message("dead", "失效"),
    "admin.source.server": Message("server", "服务端"),
    "admin.source.client": Message("client", "客户端"),
    "admin.keys.title": Message("Client keys", "客户端 key"),
    "admin.keys.empty": Message("No client keys are configured.", "没有配置客户端 key。"),
    "admin.keys.name": Message("Name", "名称"),
    "admin.keys.id": Message("ID", "编号"),
    "admin.keys.rpm": Message("Requests/min limit", "每分钟请求上限"),
    "admin.keys.concurrency": Message("Concurrency limit", "并发上限"),
    "admin.keys.requests_today": Message("Requests today", "今日请求"),
    "admin.keys.requests_last_minute": Message("Last minute", "最近一分钟"),
    "admin.keys.in_flight": Message("In flight", "进行中"),
    "admin.keys.last_used": Message("Last used", "最近使用"),
    "admin.unlimited": Message("unlimited", "不限"),
    "admin.never": Message("never", "从未"),
    "admin.unknown": Message("unknown", "未知"),
    "admin.chart.title": Message("Requests per minute, last hour", "最近一小时每分钟请求数"),
    # Counts after a colon: no English plural to get wrong for 1.
    "admin.chart.summary": Message(
        "Last hour: requests: {requests}, errors: {errors}, busiest minute: {peak}.",
        "最近一小时：请求 {requests} 个，错误 {errors} 个，最忙的一分钟 {peak} 个。",
    ),
    "admin.chart.empty": Message("No requests in the last hour.", "最近一小时没有请求。"),
    "admin.chart.requests": Message("Requests", "请求"),
    "admin.chart.errors": Message("Errors", "错误"),
    "admin.chart.axis": Message("per minute", "每分钟"),
    "admin.chart.now": Message("now", "现在"),
    "admin.chart.minute": Message(
        "{time}: requests: {requests}, errors: {errors}", "{time}：请求 {requests} 个，错误 {errors} 个"
    ),
    "admin.ago.now": Message("just now", "刚刚"),
    "admin.ago.seconds": Message("{n} s ago", "{n} 秒前"),
    "admin.ago.minutes": Message("{n} min ago", "{n} 分钟前"),
    "admin.ago.hours": Message("{n} h ago", "{n} 小时前"),
    "admin.ago.days": Message("{n} d ago", "{n} 天前"),
    # MiniMax Code accounts signed in on the server (gateway/system/admin_signin.py).
    "admin.code.title": Message("MiniMax Code accounts", "MiniMax Code 账号"),
    "admin.code.empty": Message("No MiniMax Code account is signed in.", "还没有登录任何 MiniMax Code 账号。"),
    "admin.code.name": Message("Name", "名称"),
    "admin.code.region": Message("Region", "区域"),
    "admin.code.expires": Message("Token expires", "令牌到期"),
    "admin.code.plan": Message("Plan", "套餐"),
    "admin.code.quota": Message("Quota", "额度"),
    "admin.code.state": Message("State", "状态"),
    "admin.code.state.ok": Message("ok", "正常"),
    "admin.code.state.dead": Message("log in again", "需重新登录"),
    "admin.code.window.interval": Message("5 h", "5 小时"),
    "admin.code.window.weekly": Message("week", "每周"),
    "admin.code.used": Message("{percent}% used", "已用 {percent}%"),
    "admin.code.used_of": Message("{used} of {total}", "{total} 中已用 {used}"),
    "admin.code.resets": Message("resets {time}", "{time} 重置"),
    "admin.code.logout": Message("Log out", "登出"),
    "admin.code.spent": Message("quota used up until {time}", "额度已用完，{time} 恢复"),
    "admin.code.region.cn": Message("mainland China (cn)", "中国大陆（cn）"),
    "admin.code.region.global": Message("global", "海外（global）"),
    "admin.code.login.title": Message("Log in a MiniMax Code account", "登录 MiniMax Code 账号"),
    "admin.code.login.intro": Message(
        "A device login: open the link shown next, approve with its code, and the account joins this gateway.",
        "设备登录：打开接下来显示的链接，用给出的代码确认，账号即加入本网关。",
    ),
    "admin.code.login.name": Message("Name (optional)", "名称（可选）"),
    "admin.code.login.start": Message("Log in with MiniMax", "用 MiniMax 登录"),
    "admin.code.login.step": Message(
        "Open this page, sign in to MiniMax if asked, and approve with the code:",
        "打开下面的页面（需要时先登录 MiniMax），用这个代码确认：",
    ),
    "admin.code.login.qr": Message("Or scan it with a phone:", "或用手机扫码："),
    "admin.code.login.expires": Message("The code expires at {time}.", "代码在 {time} 过期。"),
    "admin.code.login.back": Message("Back to the admin page", "返回管理后台"),
    "admin.code.login.missing": Message(
        "This login is over or unknown; start a new one from the admin page.",
        "这次登录已结束或不存在；请在管理后台重新发起。",
    ),
    "admin.code.login.unavailable": Message(
        "MiniMax's account host could not start a login: {reason} Try again later.",
        "MiniMax 的账号服务器没能发起登录：{reason} 请稍后再试。",
    ),
    "admin.code.login.pending": Message("Waiting for the approval…", "等待确认…"),
    "admin.code.login.ok": Message("Signed in as {name}.", "已登录为 {name}。"),
    "admin.code.login.denied": Message("The login was denied.", "登录被拒绝了。"),
    "admin.code.login.expired": Message("The code expired; start again.", "代码已过期，请重新发起。"),
    "admin.code.login.failed": Message("The login failed; start again.", "登录失败，请重新发起。"),
}

#: Every message, by key.
MESSAGES: dict[str, Message] = {**_DOCTOR_STAGES, **_DOCTOR_CAUSES, **_DOCTOR_REPORT, **_PAGE, **_ADMIN}

#: The Chinese line of each endpoint on the homepage, by Flask endpoint name.
ENDPOINT_HELP_ZH: dict[str, str] = {
    "system.index": "本页，中文或英文（?lang=zh|en）；请求带 Accept: application/json 时返回 JSON。",
    "system.ping": "存活检查：返回 pong。",
    "system.healthz": "进程健康状况，附各状态的账号数（空闲、忙碌、冷却中）。",
    "system.list_models": "对外提供的模型列表，按调用方的 API 格式返回。",
    "system.get_model": "单个模型的信息，按调用方的 API 格式返回。",
    "ops.metrics_text": "Prometheus 指标。",
    "openapi.openapi_json": "OpenAPI 3.1 文档：每个公开端点的请求体、响应与错误格式。",
    "ops.readyz": "配置已加载、且上游最近有过应答时即为就绪。",
    "ops.token_check": "凭证诊断服务：{\"token\": CRED} → 各步骤结果、积分、是否可用。",
    "admin.page": "管理后台页面：账号、客户端 key、最近一小时的请求（需管理密钥或登录）。",
    "admin.accounts": "管理后台的数据（JSON）：账号、客户端 key、每分钟请求数（需管理密钥）。",
    "admin.login": "管理后台的登录表单：提交管理密钥，换取会话 cookie。",
    "admin.logout": "退出管理后台的登录（清除会话 cookie）。",
    "admin_signin.start": "在管理后台发起 MiniMax Code 设备登录（需管理密钥），转到该登录的页面。",
    "admin_signin.accounts": "在服务器上登录的 MiniMax Code 账号及其最近一次读到的额度，JSON 格式（需管理密钥）。",
    "admin_signin.page": "设备登录的页面：用户代码、链接、二维码和进度（需管理密钥）。",
    "admin_signin.poll": "设备登录的一步轮询，以 JSON 返回状态（需管理密钥）。",
    "admin_signin.logout": "让一个 MiniMax Code 账号从本网关登出（仅本地；需管理密钥），回到管理后台。",
    "openai.chat_completions": "OpenAI Chat Completions，流式、非流式均可。",
    "openai.speech": "OpenAI 文字转语音。",
    "openai.transcriptions": "OpenAI 语音转文字。",
    "responses.create": "OpenAI Responses，流式、非流式均可（previous_response_id 续接已存储的回答）。",
    "responses.stored_response": "按 id 读取（GET）或删除（DELETE）已存储的 Responses 回答。",
    "anthropic.messages": "Anthropic Messages，流式、非流式均可。",
    "anthropic.count_tokens": "Anthropic 统计 token 数。",
    "gemini.model_action": "Gemini 的 {model}:generateContent、:streamGenerateContent、:countTokens。",
    "gemini.list_models": "Gemini 模型列表。",
    "gemini.get_model": "Gemini 模型信息。",
}


# --- lookup ---------------------------------------------------------------------------------


def template(key: str, lang: Lang) -> str:
    """The unformatted message (``{field}`` placeholders intact); KeyError for an unknown key."""
    return MESSAGES[key].get(lang)


def text(key: str, lang: Lang, /, **fields: object) -> str:
    """The message in ``lang`` with its ``{placeholders}`` filled from ``fields``."""
    return template(key, lang).format(**fields)


def placeholders(message: str) -> frozenset[str]:
    """The ``{field}`` names a message uses."""
    return frozenset(name for _, name, _, _ in Formatter().parse(message) if name)


def stage_key(stage: str) -> str:
    """The key of a doctor stage by its English name: ``"user info"`` → ``doctor.stage.user_info``."""
    return "doctor.stage." + stage.replace(" ", "_")


def endpoint_help(endpoint: str, english: str, lang: Lang) -> str:
    """An endpoint's homepage line: ``english`` itself, or its Chinese from :data:`ENDPOINT_HELP_ZH`."""
    if lang == "zh":
        return ENDPOINT_HELP_ZH.get(endpoint, english)
    return english


# --- choosing the language --------------------------------------------------------------------


def negotiate(query_lang: str | None, accept_language: str | None) -> Lang:
    """The language of an HTTP answer: ``?lang=`` wins, then ``Accept-Language``, else English."""
    chosen = _match(query_lang or "")
    if chosen is not None:
        return chosen
    for tag in _ranked(accept_language or ""):
        if tag == "*":
            return DEFAULT_LANG
        chosen = _match(tag)
        if chosen is not None:
            return chosen
    return DEFAULT_LANG


def lang_from_env(environ_lang: str | None) -> Lang:
    """The language of a POSIX locale value (``zh_CN.UTF-8`` → ``"zh"``; C, unset → English).

    Takes one variable's value, as ``LANG``, ``LC_ALL`` or GNU's colon-separated
    ``LANGUAGE`` (``zh_CN:en``) hold it; the caller picks the variable.
    """
    for name in (environ_lang or "").split(":"):
        name = name.split(".")[0].split("@")[0].strip()
        if name.lower() in _NO_LOCALE:
            continue
        chosen = _match(name)
        if chosen is not None:
            return chosen
    return DEFAULT_LANG


def _match(tag: str) -> Lang | None:
    primary = tag.strip().lower().replace("_", "-").split("-")[0]
    if primary in _ALIASES:
        return _ALIASES[primary]
    return next((lang for lang in LANGS if lang == primary), None)


def _ranked(header: str) -> list[str]:
    """Accept-Language tags by falling quality (ties keep their order); q=0 ones dropped."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.partition(";")
        quality = _quality(params)
        if tag.strip() and quality > 0:
            ranked.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0
