-- The daemon's StatsD input: one listener for all products while any declares metrics
-- (UDP, by default 127.0.0.1:8125, and optionally a Unix datagram socket). Lines are
-- counted in C (statsd.so); here they are drained into the window of each product that
-- declares them, in its state: a minute at most after they arrive (at the time scale),
-- before each report, at a reload and at stop, so that a crash loses a minute at most.
-- The window is a list of segments, one per report built since the last one delivered:
-- a delivered report drops the segments it was built from, a failed one keeps them.
local core = require("phonehome.core")
local datadir = require("phonehome.daemon.datadir")
local log = require("phonehome.base.log")

local M = {}

M.DEFAULT_UDP = "127.0.0.1:8125"
M.FLUSH = 60          -- seconds from the first line to its drain, at the time scale
M.MIN_FLUSH = 0.1     -- seconds, whatever the time scale
M.LOG_EVERY = 3600    -- seconds between two lines about one undeclared name
M.LOG_NAMES = 10      -- undeclared names told per drain, at most

local function merge(a, b)
    if a == nil then return b end
    return core.statsd_merge(a, b)
end

-- The product's metrics in its state, made when missing.
local function held(p)
    local m = p.state.metrics
    if type(m) ~= "table" then
        m = { segments = { { from = core.time(), aggs = {} } }, gauges = {} }
        p.state.metrics = m
    end
    return m
end

-- The products each name goes to: those declaring it with the kind the first declared.
local function receivers(D)
    local by_name, kind, list = {}, {}, {}
    for _, p in ipairs(D.products) do
        for _, m in ipairs(p.def.metrics or {}) do
            if kind[m.name] == nil then
                kind[m.name] = m.kind
                by_name[m.name] = {}
                list[#list + 1] = { name = m.name, kind = m.kind,
                                    value = held(p).gauges[m.name] }
            end
            if kind[m.name] == m.kind then
                by_name[m.name][#by_name[m.name] + 1] = p
            elseif not (D.statsd_clash or {})[p.name .. "\0" .. m.name] then
                D.statsd_clash = D.statsd_clash or {}
                D.statsd_clash[p.name .. "\0" .. m.name] = true
                log.warn({ product = p.name, metric = m.name,
                           msg = "metric not received: another product declares it as a "
                               .. kind[m.name] })
            end
        end
    end
    return by_name, list
end

-- The counts since the listener began, for status and the log.
local function count(D, stats)
    local c = D.statsd_counts
    for _, k in ipairs({ "lines", "malformed", "undeclared", "wrong_type", "datagrams",
                         "truncated" }) do
        c[k] = (c[k] or 0) + stats[k]
    end
    local dropped = stats.kernel_drops - (c.kernel_drops or 0)
    c.kernel_drops = stats.kernel_drops
    if dropped > 0 then
        log.warn({ msg = "StatsD datagrams dropped by the kernel (receive buffer full)",
                   dropped = dropped, total = c.kernel_drops })
    end
    if stats.malformed > 0 then
        log.warn({ msg = "StatsD lines not understood", lines = stats.malformed,
                   wrong_type = stats.wrong_type, example = stats.malformed_line })
    end
    local told, now = 0, core.time()
    D.statsd_told = D.statsd_told or {}
    for name, n in pairs(stats.undeclared_names) do
        local last = D.statsd_told[name]
        if not last or now - last >= M.LOG_EVERY then
            if told < M.LOG_NAMES then
                log.warn({ msg = "StatsD metric dropped: no product declares it", metric = name,
                           lines = n })
                D.statsd_told[name] = now
            end
            told = told + 1
        end
    end
    if told > M.LOG_NAMES then
        log.warn({ msg = "StatsD metrics dropped: more names no product declares",
                   names = told - M.LOG_NAMES })
    end
    datadir.write_listener(D.data_dir, c)
end

-- Drains what the listener counted into the products' windows and saves each changed.
function M.drain(D)
    if D.statsd_timer then D.statsd_timer:close() end
    D.statsd_timer = nil
    local l = D.statsd
    if not l then return end
    local aggs, stats = l:drain()
    for name, agg in pairs(aggs) do
        for _, p in ipairs(D.statsd_to[name] or {}) do
            local m = held(p)
            local seg = m.segments[#m.segments]
            local ok, merged = pcall(merge, seg.aggs[name], agg)
            if not ok then
                -- a window the state file held in a shape it cannot be merged with
                log.warn({ product = p.name, metric = name, error = merged,
                           msg = "metric's window not readable; started again" })
                merged = agg
            end
            seg.aggs[name] = merged
            if agg.kind == "gauge" and agg.value then m.gauges[name] = agg.value end
            p.statsd_changed = true
        end
    end
    for _, p in ipairs(D.products) do
        if p.statsd_changed then
            p.statsd_changed = nil
            datadir.write_state(D.data_dir, p.name, p.state)
        end
    end
    count(D, stats)
end

local function arm(D)
    if D.statsd_timer or D.stopping then return end
    local seconds = math.max(M.MIN_FLUSH, M.FLUSH / D.scale)
    D.statsd_timer = core.timer(math.ceil(seconds * 1000), function()
        D.statsd_timer = nil
        M.drain(D)
    end)
end

-- Listens while a product declares metrics, for what the products running now declare
-- (at start, and after a reload or a stop); what was counted is drained first.
function M.configure(D)
    local to, list = receivers(D)
    if D.statsd then M.drain(D) end
    D.statsd_to = to
    if #list == 0 or D.stopping then return M.stop(D) end
    if not D.statsd then
        local l, err = core.statsd_listen({ udp = D.statsd_udp, unix = D.statsd_unix,
                                            on_data = function() arm(D) end })
        if not l then
            if D.statsd_error ~= err then
                log.error({ msg = "StatsD input not listening; metrics are not received",
                            error = err })
            end
            D.statsd_error = err
            return
        end
        D.statsd, D.statsd_error = l, nil
        D.statsd_counts = { since = core.time(), udp = l:address(), unix = D.statsd_unix }
        log.info({ msg = "StatsD input listening", udp = l:address() or "off",
                   unix = D.statsd_unix or "off", metrics = #list })
    end
    D.statsd:declare(list)
end

-- Closes the listener (the daemon stops, or no product declares metrics), its counts
-- drained and saved first.
function M.stop(D)
    if not D.statsd then return end
    M.drain(D)
    D.statsd:close()
    D.statsd = nil
end

-- Starts a new segment of p's window at the build of a report at time at (epoch
-- seconds), after draining what arrived until now; segments no pending report ends at
-- are merged into one.
function M.cut(D, p, at)
    if not next(p.def.metrics) then return end
    M.drain(D)
    local m = held(p)
    local pending = {}
    for _, t in pairs(p.state.cuts or {}) do pending[t] = true end
    local kept = { m.segments[1] }
    for i = 2, #m.segments do
        local seg = m.segments[i]
        if pending[seg.from] then
            kept[#kept + 1] = seg
        else
            local into = kept[#kept]
            for name, agg in pairs(seg.aggs) do
                local ok, merged = pcall(merge, into.aggs[name], agg)
                into.aggs[name] = ok and merged or agg
            end
        end
    end
    kept[#kept + 1] = { from = at, aggs = {} }
    m.segments = kept
end

-- Drops the segments a delivered report was built from (those begun before upto).
function M.close_window(p, upto)
    local m = p.state.metrics
    if type(m) ~= "table" then return end
    local kept = {}
    for _, seg in ipairs(m.segments) do
        if seg.from >= upto then kept[#kept + 1] = seg end
    end
    if #kept == 0 then kept[1] = { from = upto, aggs = {} } end
    m.segments = kept
end

-- window(p) -> { [name] = aggregate } of every segment of p's window; a gauge has its
-- last value even when no line set it in the window.
function M.window(p)
    local m = p.state.metrics
    if not next(p.def.metrics) or type(m) ~= "table" then return nil end
    local out = {}
    for _, seg in ipairs(m.segments) do
        for name, agg in pairs(seg.aggs) do
            local ok, merged = pcall(merge, out[name], agg)
            out[name] = ok and merged or agg
        end
    end
    for name, v in pairs(m.gauges) do
        out[name] = out[name] or { kind = "gauge", lines = 0 }
        out[name].value = v
    end
    return out
end

return M
