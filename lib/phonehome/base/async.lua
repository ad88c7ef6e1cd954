-- Waiting without blocking the loop: coroutines that sleep on a timer or wait for an HTTP
-- transfer, and a graceful stop that waits for what is in flight. Used by the daemon and
-- the collector alike.
local core = require("phonehome.core")
local log = require("phonehome.base.log")

local M = {}

M.in_flight = {}   -- operations started by await() (HTTP transfers, source reads) not ended

-- Resumes a coroutine; an error in it is logged with its traceback, never raised into
-- the loop, so that one report's failure stays its own.
local function resume(co, ...)
    local ok, err = coroutine.resume(co, ...)
    if not ok then log.error({ msg = "internal error", error = debug.traceback(co, err) }) end
end

M.resume = resume

-- spawn(fn, ...): runs fn(...) in a new coroutine, until its first wait.
function M.spawn(fn, ...)
    resume(coroutine.create(fn), ...)
end

-- The longest single wait, in ms: 10 years, the longest duration a definition may give
-- (a backoff doubled by retries, divided by a time scale, may ask for more).
M.MAX_WAIT = 315360000000

-- A delay in seconds as the milliseconds a timer is armed with: from 0 to MAX_WAIT.
function M.timer_ms(seconds)
    local ms = seconds * 1000 + 0.5
    if ms ~= ms or ms >= M.MAX_WAIT then return M.MAX_WAIT end
    return ms < 1 and 0 or math.floor(ms)
end

-- sleep(seconds): inside a coroutine, waits on the loop (at most MAX_WAIT).
function M.sleep(seconds)
    local co = coroutine.running()
    core.timer(M.timer_ms(seconds), function() resume(co) end)
    coroutine.yield()
end

-- await(start) -> what the operation's callback is given: start(callback) begins an
-- operation on the loop that calls back later, and returns its handle (with :cancel());
-- inside a coroutine, waits for it. It is in M.in_flight meanwhile.
function M.await(start)
    local co = coroutine.running()
    local handle
    handle = start(function(...)
        M.in_flight[handle] = nil
        resume(co, ...)
    end)
    M.in_flight[handle] = true
    return coroutine.yield()
end

-- request(opts) -> the result of core.http(opts): inside a coroutine, waits for the
-- transfer to end.
function M.request(opts)
    return M.await(function(done) return core.http(opts, done) end)
end

-- drain(grace_seconds, idle, finish): polls idle() every 20 ms; calls finish(timed_out)
-- once it is true or the grace is over.
function M.drain(grace, idle, finish)
    local deadline = core.monotonic() + grace
    local function wait()
        if idle() then
            finish(false)
        elseif core.monotonic() >= deadline then
            finish(true)
        else
            core.timer(20, wait)
        end
    end
    wait()
end

return M
