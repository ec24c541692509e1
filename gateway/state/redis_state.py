"""The Redis backend: state shared by gateways on several hosts or containers.

Every lease operation is one Lua script, so it is atomic on the server and timed by the
server's clock (hosts' clocks never need to agree). Leases, cooldowns and tickets are
keys with a time-to-live that Redis itself expires; each account's waiters are a sorted
set ordered by a global ticket number. Under the gevent worker redis-py's sockets are
cooperative like every other socket.

Keys (all under the prefix): ``lease:<account>`` (the holder), ``cool:<account>``,
``used`` (hash: account → last lease, ms), ``q:<account>`` (sorted set of tickets),
``t:<ticket>`` (the ticket's number), ``seq``, ``kv:<key>``, ``hit:<key>:<window>``,
``log:<key>`` (sorted set of admitted events by time), ``rec:<kind>`` (hash).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis

from gateway.state.base import TICKET_TTL, AccountView, Attempt

PREFIX = "minimax-free-api:"
#: Seconds to connect to Redis and to wait for one answer.
SOCKET_TIMEOUT = 5.0

#: Compare-and-swap of one record (a hash field): replaced, or removed without a value.
SWAP_RECORD = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) else redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""

TRY_LEASE = """
local p, ticket, holder = ARGV[1], ARGV[2], ARGV[3]
local ttl, ticket_ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tkey = p .. 't:' .. ticket
local seq = redis.call('GET', tkey)
if not seq then seq = redis.call('INCR', p .. 'seq') end
redis.call('SET', tkey, seq, 'PX', ticket_ttl)
local best, best_used, cooling = nil, nil, nil
for i = 6, #ARGV do
  local account = ARGV[i]
  local queue = p .. 'q:' .. account
  redis.call('ZADD', queue, seq, ticket)
  redis.call('PEXPIRE', queue, ticket_ttl * 2)
  local head
  while true do  -- tickets of waiters that died leave the head of the queue
    head = redis.call('ZRANGE', queue, 0, 0)[1]
    if head == ticket or redis.call('EXISTS', p .. 't:' .. head) == 1 then break end
    redis.call('ZREM', queue, head)
  end
  local leased = redis.call('EXISTS', p .. 'lease:' .. account) == 1
  local cool = redis.call('PTTL', p .. 'cool:' .. account)
  if not leased and cool > 0 and (cooling == nil or cool < cooling) then cooling = cool end
  if head == ticket and not leased and cool <= 0 then
    local used = tonumber(redis.call('HGET', p .. 'used', account) or '0')
    if best == nil or used < best_used then best, best_used = account, used end
  end
end
if best == nil then return {'', cooling or -1} end
redis.call('SET', p .. 'lease:' .. best, holder, 'PX', ttl)
redis.call('HSET', p .. 'used', best, now)
for i = 6, #ARGV do redis.call('ZREM', p .. 'q:' .. ARGV[i], ticket) end
redis.call('DEL', tkey)
return {best, -1}
"""

WITHDRAW = """
local p, ticket = ARGV[1], ARGV[2]
for i = 3, #ARGV do redis.call('ZREM', p .. 'q:' .. ARGV[i], ticket) end
redis.call('DEL', p .. 't:' .. ticket)
"""

# A lease that ran out but was not taken by anyone is simply taken again.
RENEW = """
local p, ttl, lost = ARGV[1], tonumber(ARGV[2]), {}
for i = 3, #ARGV, 2 do
  local key, holder = p .. 'lease:' .. ARGV[i], ARGV[i + 1]
  local current = redis.call('GET', key)
  if current == holder or not current then
    redis.call('SET', key, holder, 'PX', ttl)
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""

RELEASE = """
local p, account, holder, cooldown = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = p .. 'lease:' .. account
if redis.call('GET', key) == holder then redis.call('DEL', key) end
if cooldown > 0 and redis.call('PTTL', p .. 'cool:' .. account) < cooldown then
  redis.call('SET', p .. 'cool:' .. account, '1', 'PX', cooldown)
end
"""

# A sliding log: a sorted set of event ids scored by their time (ms). Times come from the
# caller (the hosts' clocks, which agree to well under a window), so a test can drive them.
ADMIT = """
local key, limit, window, now, event = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
  return math.max(oldest + window - now, 1)
end
redis.call('ZADD', key, now, event)
redis.call('PEXPIRE', key, window)
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisState:
    """:class:`~gateway.state.base.SharedState` on a Redis server."""

    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        self._redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=SOCKET_TIMEOUT,
                                           socket_connect_timeout=SOCKET_TIMEOUT, health_check_interval=30)
        self._prefix = prefix
        self._try_lease = self._redis.register_script(TRY_LEASE)
        self._withdraw = self._redis.register_script(WITHDRAW)
        self._renew = self._redis.register_script(RENEW)
        self._release = self._redis.register_script(RELEASE)
        self._swap_record = self._redis.register_script(SWAP_RECORD)
        self._admit = self._redis.register_script(ADMIT)

    def try_lease(self, ticket: str, accounts: Sequence[str], holder: str, ttl: float) -> Attempt:
        account, cooling = cast(list[Any], self._try_lease(
            args=[self._prefix, ticket, holder, _ms(ttl), _ms(TICKET_TTL), *accounts]))
        return Attempt(str(account) or None, int(cooling) / 1000 if int(cooling) > 0 else None)

    def withdraw(self, ticket: str, accounts: Sequence[str]) -> None:
        self._withdraw(args=[self._prefix, ticket, *accounts])

    def renew(self, held: Mapping[str, str], ttl: float) -> set[str]:
        if not held:
            return set()
        pairs = [part for account, holder in held.items() for part in (account, holder)]
        return {str(account) for account in cast(list[Any], self._renew(args=[self._prefix, _ms(ttl), *pairs]))}

    def release(self, account: str, holder: str, cooldown: float = 0.0) -> None:
        self._release(args=[self._prefix, account, holder, _ms(cooldown) if cooldown > 0 else 0])

    def accounts(self, accounts: Sequence[str]) -> dict[str, AccountView]:
        pipe = self._redis.pipeline(transaction=False)
        for account in accounts:
            pipe.get(self._key("lease:", account))
            pipe.pttl(self._key("cool:", account))
        answers = pipe.execute()
        views = {}
        for i, account in enumerate(accounts):
            holder = answers[2 * i]
            views[account] = AccountView(holder is not None, max(0, int(answers[2 * i + 1])) / 1000,
                                         None if holder is None else str(holder))
        return views

    def get(self, key: str) -> str | None:
        value = self._redis.get(self._key("kv:", key))
        return None if value is None else str(value)

    def put(self, key: str, value: str, ttl: float | None = None) -> None:
        self._redis.set(self._key("kv:", key), value, px=None if ttl is None else _ms(ttl))

    def delete(self, key: str) -> None:
        self._redis.delete(self._key("kv:", key))

    def hit(self, key: str, window: float, keep: float = 0.0) -> int:
        # The window is counted on this host's clock: hosts agree to well under a window.
        name = self._counter(key, math.floor(time.time() / window) * window)
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(name)
        pipe.pexpire(name, _ms(window * 2 + keep))
        count, _ = pipe.execute()
        return int(count)

    def admit(self, key: str, limit: int, window: float, now: float) -> float:
        wait = self._admit(args=[self._key("log:", key), limit, _ms(window), math.floor(now * 1000),
                                 uuid.uuid4().hex])
        return int(cast(int, wait)) / 1000

    def counts(self, key: str, window: float, windows: int = 1) -> list[int]:
        current = math.floor(time.time() / window)
        names = [self._counter(key, (current - back) * window) for back in range(windows - 1, -1, -1)]
        return [int(value or 0) for value in cast(list[Any], self._redis.mget(names))]

    def add_record(self, kind: str, name: str, value: str) -> None:
        self._redis.hset(self._key("rec:", kind), name, value)

    def remove_record(self, kind: str, name: str) -> None:
        self._redis.hdel(self._key("rec:", kind), name)

    def records(self, kind: str) -> dict[str, str]:
        found = cast(dict[Any, Any], self._redis.hgetall(self._key("rec:", kind)))
        return {str(name): str(value) for name, value in found.items()}

    def swap_record(self, kind: str, name: str, expected: str, value: str | None) -> bool:
        tail = [] if value is None else [value]
        return bool(self._swap_record(keys=[self._key("rec:", kind)], args=[name, expected, *tail]))

    def close(self) -> None:
        self._redis.close()

    def _counter(self, key: str, start: float) -> str:
        return self._key("hit:", f"{key}:{float(start)!r}")

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}{name}"
