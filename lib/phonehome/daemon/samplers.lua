-- The daemon's samplers: one timer for the samplers of every product, woken at the next
-- boundary of any period (periods are aligned to the clock, so products sampling every
-- minute wake the process once a minute in all; none at all, no timer). Each sample
-- joins the product's window in its state, saved at once (a reading that fails again the
-- same way writes nothing); a delivered report ends the window it was built from (runner's
-- close_window).
local async = require("phonehome.base.async")
local core = require("phonehome.core")
local log = require("phonehome.base.log")
local runner = require("phonehome.daemon.runner")
local statsd = require("phonehome.daemon.statsd")

local M = {}

-- A reading of sampler s for product p, or nil (and why, when it failed). w is the
-- sampler's window, which keeps process.cpu's previous reading.
local function read(D, p, s, w, now)
    if s.metric then
        -- the gauge as of now: lines waiting in the listener first
        if D.statsd_timer then statsd.drain(D) end
        local m = p.state.metrics
        return m and m.gauges[s.metric]
    end
    local probe = s.probe
    if probe == "system.memory_available" then return core.memory_available() end
    local target = runner.target(D, p)
    if not (target and target.pid) then
        return nil, target and target.error or "no product process: give --pid or --pidfile"
    end
    local proc, err = core.process(target.pid)
    if not proc then return nil, err end
    if probe == "process.rss" then return proc.rss end
    local cpu, prev = proc.user_cpu + proc.system_cpu, w.prev
    w.prev = { pid = proc.pid, start_time = proc.start_time, cpu = cpu, time = now }
    -- the first reading of a process is what the next one is measured from
    if not (prev and prev.pid == proc.pid and math.abs(prev.start_time - proc.start_time) < 1)
        or now <= prev.time or cpu < prev.cpu then
        return nil
    end
    return (cpu - prev.cpu) / (now - prev.time)
end

-- The shortest time between two samples of a sampler, whatever the time scale: a demo or
-- a spec at a high scale must not turn the saving of each sample into a busy loop.
M.MIN_PERIOD = 0.1

-- The period of a sampler in seconds, at the daemon's time scale.
local function period(D, s)
    return math.max(M.MIN_PERIOD, s.every / 1000 / D.scale)
end

-- Adds reading v (or the failure err) to sampler s's window w; whether the state changed.
local function record(p, s, w, v, err, now)
    local took = false
    if v then
        w.t[#w.t + 1], w.v[#w.v + 1] = now, v
        if #w.v > s.max then
            table.remove(w.t, 1)
            table.remove(w.v, 1)
            w.dropped = (w.dropped or 0) + 1
        end
        took = true
    elseif err and err ~= w.error then
        -- said once until it changes: a product down for a day is one line
        log.warn({ product = p.name, msg = "sample not taken", sampler = s.name, error = err })
        took = true
    end
    -- process.cpu's first reading is kept for the next one
    took = took or (s.probe == "process.cpu" and v == nil and err == nil)
    w.error = v == nil and err or nil
    return took
end

-- A sample of a source: its script's value function on what the source reads, in a
-- coroutine of its own (one at a time per sampler), saved when it is in.
local function sample_source(D, p, s, w, now)
    p.sampling = p.sampling or {}
    if p.sampling[s.name] then return end
    p.sampling[s.name] = true
    async.spawn(function()
        local ok, v, err = pcall(p.product.sample, p.product, s.name, runner.sample_opts(D, p))
        p.sampling[s.name] = nil
        if not ok then v, err = nil, tostring(v) end
        if D.stopping or p.stopped then return end
        if record(p, s, w, v, err, now) then runner.save(D, p) end
    end)
end

-- Takes the samples that are due: a sampler is due once in each period of the clock.
local function tick(D)
    local now = core.time()
    for _, p in ipairs(D.products) do
        local took = false
        for _, s in ipairs(p.def.samplers) do
            local slot = math.floor(now / period(D, s))
            p.state.samples = p.state.samples or {}
            local w = p.state.samples[s.name] or { t = {}, v = {}, dropped = 0 }
            p.state.samples[s.name] = w
            if p.sending and not p.stopped and slot ~= w.slot then
                w.slot = slot
                if s.source then
                    sample_source(D, p, s, w, now)
                else
                    local v, err = read(D, p, s, w, now)
                    took = record(p, s, w, v, err, now) or took
                end
            end
        end
        if took then runner.save(D, p) end
    end
end

-- When the next sample of any product is due (epoch seconds), or nil when none samples.
local function next_due(D)
    local now, due = core.time(), nil
    for _, p in ipairs(D.products) do
        for _, s in ipairs(p.def.samplers) do
            local every = period(D, s)
            local at = (math.floor(now / every) + 1) * every
            if not due or at < due then due = at end
        end
    end
    return due
end

-- Arms the timer again for the products running now (after a start, reload or stop).
function M.rearm(D)
    if D.sampler_timer then D.sampler_timer:close() end
    D.sampler_timer = nil
    local due = not D.stopping and next_due(D)
    if not due then return end
    D.sampler_timer = core.timer(math.max(1, async.timer_ms(due - core.time())), function()
        D.sampler_timer = nil
        if D.stopping then return end
        tick(D)
        M.rearm(D)
    end)
end

-- Stops the timer (the daemon is stopping).
function M.stop(D)
    if D.sampler_timer then D.sampler_timer:close() end
    D.sampler_timer = nil
end

return M
