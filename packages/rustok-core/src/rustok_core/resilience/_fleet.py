"""The shared circuit on Redis: state, counters and windows updated atomically by Lua scripts.

pybreaker's Redis storage writes each field with its own command (two or more
round trips per call, lost updates under concurrency, ``opened_at`` to the
second, and when Redis is down the breaker is off). Here one script per
operation reads and updates everything it needs atomically:

- ``admit`` (only while open past the timeout, or half-open): moves the circuit
  to half-open when the open duration has passed on the fleet's clock, and takes
  a trial permit from the one budget every process shares;
- ``record`` (after every call the fleet admitted): counts the outcome in the
  consecutive counter or the sliding window, decides the transition, and
  returns the state, so that the process mirrors it without another trip;
- ``force`` (manual ``open()``, ``close()``, ``reset()``) and ``read`` (at start).

A generation number, bumped by every transition, tells stale outcomes apart.
The hash also counts the openings since the last close (``opens``), so that with
``max_timeout`` every process waits out the same, growing, open duration.
Each reply is ``(state, generation, opened_at, admitted, open_duration)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

__all__ = ["FleetCircuit", "FleetReply"]

_PRELUDE = """
local h, wkey, bkey = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local timeout = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local fail_max = tonumber(ARGV[4])
local success_max = tonumber(ARGV[5])
local rated = ARGV[6] == '1'
local wtype = ARGV[7]
local wsize = tonumber(ARGV[8])
local minimum = tonumber(ARGV[9])
local frate = tonumber(ARGV[10])
local srate = tonumber(ARGV[11])
local max_timeout = tonumber(ARGV[12])
local mult = tonumber(ARGV[13])
local f = redis.call('HMGET', h, 'state', 'gen', 'opened_at', 'failures', 'successes',
  'permits', 'half_open_at', 't_calls', 't_fail', 't_slow', 'opens')
local state = f[1] or 'closed'
local gen = tonumber(f[2] or '0')
local opened_at = tonumber(f[3] or '0')
local failures = tonumber(f[4] or '0')
local successes = tonumber(f[5] or '0')
local permits = tonumber(f[6] or '0')
local half_open_at = tonumber(f[7] or '0')
local t_calls = tonumber(f[8] or '0')
local t_fail = tonumber(f[9] or '0')
local t_slow = tonumber(f[10] or '0')
local opens = tonumber(f[11] or '0')

local function fmt(x) return string.format('%.17g', x) end

local function transition(new)
  -- The openings since the last close (also when a close left no 0 behind).
  if state == 'closed' or new == 'closed' then opens = 0 end
  if new == 'open' then opens = opens + 1 end
  gen = gen + 1
  state = new
  failures, successes, permits, t_calls, t_fail, t_slow = 0, 0, 0, 0, 0, 0
  redis.call('HSET', h, 'state', new, 'gen', gen, 'opens', opens, 'failures', 0,
    'successes', 0, 'permits', 0, 't_calls', 0, 't_fail', 0, 't_slow', 0, 'w_calls', 0,
    'w_fail', 0, 'w_slow', 0)
  redis.call('DEL', wkey, bkey)
  if new == 'open' then
    opened_at = now
    redis.call('HSET', h, 'opened_at', fmt(now))
  elseif new == 'half_open' then
    half_open_at = now
    redis.call('HSET', h, 'half_open_at', fmt(now))
  end
end

-- How long the current opening lasts: timeout for the first since a close, then
-- timeout * mult ^ k up to max_timeout (which is timeout without growth).
local function open_duration()
  if opens <= 1 or timeout == 0 then return timeout end
  return math.min(timeout * mult ^ (opens - 1), max_timeout)
end

local function reply(admitted)
  return {state, gen, fmt(opened_at), admitted, fmt(open_duration())}
end

local function exceeded(calls, fails, slows, needed)
  if calls == 0 or calls < needed then return false end
  return fails / calls >= frate or slows / calls >= srate
end
"""

_ADMIT = (
    _PRELUDE
    + """
if state == 'open' then
  if now < opened_at + open_duration() then return reply(0) end
  transition('half_open')
end
if state == 'half_open' then
  local full
  if rated then
    full = permits + t_calls >= cap
  else
    full = (cap > 0 and permits >= cap) or successes >= success_max
  end
  if full then
    -- Trials that never reported (a process died mid-call) would hold the
    -- circuit half-open for ever: after a timeout, a fresh half-open period.
    if now < half_open_at + timeout then return reply(0) end
    transition('half_open')
  end
  redis.call('HINCRBY', h, 'permits', 1)
end
return reply(1)
"""
)

_RECORD = (
    _PRELUDE
    + """
local admitted_gen = tonumber(ARGV[14])
local outcome = ARGV[15]
local slow = tonumber(ARGV[16])
if admitted_gen ~= gen then return reply(0) end
local failed = 0
if outcome == 'f' then failed = 1 end
if state == 'closed' then
  if outcome == 'r' then return reply(0) end
  if rated then
    local calls, fails, slows
    if wtype == 'count' then
      redis.call('LPUSH', wkey, failed + 2 * slow)
      calls = redis.call('HINCRBY', h, 'w_calls', 1)
      fails = redis.call('HINCRBY', h, 'w_fail', failed)
      slows = redis.call('HINCRBY', h, 'w_slow', slow)
      if calls > wsize then
        local old = tonumber(redis.call('RPOP', wkey))
        calls = redis.call('HINCRBY', h, 'w_calls', -1)
        fails = redis.call('HINCRBY', h, 'w_fail', -(old % 2))
        slows = redis.call('HINCRBY', h, 'w_slow', -math.floor(old / 2))
      end
    else
      local second = math.floor(now)
      redis.call('HINCRBY', bkey, second .. ':c', 1)
      if failed == 1 then redis.call('HINCRBY', bkey, second .. ':f', 1) end
      if slow == 1 then redis.call('HINCRBY', bkey, second .. ':s', 1) end
      calls, fails, slows = 0, 0, 0
      local all = redis.call('HGETALL', bkey)
      for i = 1, #all, 2 do
        local sec, kind = string.match(all[i], '^(-?%d+):(%a)$')
        if tonumber(sec) <= second - wsize then
          redis.call('HDEL', bkey, all[i])
        else
          local n = tonumber(all[i + 1])
          if kind == 'c' then calls = calls + n
          elseif kind == 'f' then fails = fails + n
          else slows = slows + n end
        end
      end
      redis.call('PEXPIRE', bkey, (wsize + 1) * 1000)
    end
    if exceeded(calls, fails, slows, minimum) then transition('open') end
  elseif failed == 1 then
    failures = redis.call('HINCRBY', h, 'failures', 1)
    if failures >= fail_max then transition('open') end
  elseif failures > 0 then
    redis.call('HSET', h, 'failures', 0)
  end
elseif state == 'half_open' then
  permits = redis.call('HINCRBY', h, 'permits', -1)
  if outcome == 'r' then
    if not rated and permits <= 0 and successes >= success_max then transition('closed') end
    return reply(0)
  end
  if rated then
    t_calls = redis.call('HINCRBY', h, 't_calls', 1)
    t_fail = redis.call('HINCRBY', h, 't_fail', failed)
    t_slow = redis.call('HINCRBY', h, 't_slow', slow)
    if t_calls >= cap then
      if exceeded(t_calls, t_fail, t_slow, cap) then
        transition('open')
      else
        transition('closed')
      end
    end
  elseif failed == 1 then
    transition('open')
  else
    successes = redis.call('HINCRBY', h, 'successes', 1)
    if successes >= success_max and permits <= 0 then transition('closed') end
  end
end
return reply(0)
"""
)

_FORCE = (
    _PRELUDE
    + """
local target = ARGV[14]
if target == 'half_open' then
  if state == 'open' then transition(target) end
elseif target ~= state or target == 'closed' then
  transition(target)
end
return reply(0)
"""
)

_READ = _PRELUDE + "\nreturn reply(0)\n"


class FleetReply(NamedTuple):
    """What a script says: the circuit's state and generation, and whether the call may run."""

    state: str
    generation: int
    opened_at: float
    admitted: bool
    now: float
    open_duration: float
    """Seconds the current opening lasts (the fleet's streak of openings since a close)."""


class FleetCircuit:
    """One circuit on Redis, driven by the scripts above (one round trip per operation)."""

    __slots__ = (
        "_admit",
        "_clock",
        "_force",
        "_keys",
        "_read",
        "_record",
        "client",
        "max_staleness",
    )

    def __init__(
        self,
        client: Redis,
        namespace: str,
        *,
        clock: Callable[[], float] = time.time,
        max_staleness: float = 0.1,
    ) -> None:
        self.client = client
        self.max_staleness = max_staleness
        # One hash tag, so that a Redis Cluster keeps the three keys on one node.
        prefix = f"rustok:{{{namespace}}}:circuit"
        self._keys = [prefix, prefix + ":window", prefix + ":buckets"]
        self._clock = clock
        self._admit: Script = client.register_script(_ADMIT)
        self._record: Script = client.register_script(_RECORD)
        self._force: Script = client.register_script(_FORCE)
        self._read: Script = client.register_script(_READ)

    def admit(self, config: list[str]) -> FleetReply:
        """Take a trial permit (half-open) or learn that the circuit refuses calls."""
        now = self._clock()
        return self._reply(self._admit(keys=self._keys, args=[repr(now), *config]), now)

    def record(self, config: list[str], generation: int, outcome: str, slow: bool) -> FleetReply:
        """Count an outcome (``"s"`` success, ``"f"`` failure, ``"r"`` neither) of a call
        admitted in ``generation``."""
        now = self._clock()
        args = [repr(now), *config, str(generation), outcome, "1" if slow else "0"]
        return self._reply(self._record(keys=self._keys, args=args), now)

    def force(self, config: list[str], state: str) -> FleetReply:
        """Move the circuit to ``state`` now (``"closed"`` also clears the counters)."""
        now = self._clock()
        return self._reply(self._force(keys=self._keys, args=[repr(now), *config, state]), now)

    def read(self, config: list[str]) -> FleetReply:
        """The circuit's state."""
        now = self._clock()
        return self._reply(self._read(keys=self._keys, args=[repr(now), *config]), now)

    @staticmethod
    def _reply(raw: object, now: float) -> FleetReply:
        assert isinstance(raw, list)
        state, generation, opened_at, admitted, open_duration = raw
        if isinstance(state, bytes):
            state = state.decode()
        if isinstance(opened_at, bytes):
            opened_at = opened_at.decode()
        if isinstance(open_duration, bytes):
            open_duration = open_duration.decode()
        return FleetReply(
            str(state),
            int(generation),
            float(opened_at),
            bool(admitted),
            now,
            float(open_duration),
        )
