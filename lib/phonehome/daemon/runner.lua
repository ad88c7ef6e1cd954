-- The daemon's per-product runner: a product's record, and what happens to it on
-- schedule. Each report is decided, built, kept as the last report, spooled and
-- delivered inside a coroutine of its own, after its opt-out switches are read again.
--
-- The record of a running product (what survives a reload is the record itself, with
-- only product, def, settings, sending and reason replaced by the new version's):
--   name       the product's name (its script's file name)
--   product    the handle to its sandbox (phonehome.sandbox)
--   def        its definition as plain data
--   settings   its typed settings from --set and --config, defaults applied
--   read_settings  the same with what the last build read from the product's own config
--              (the endpoint it names, for delivery)
--   sending    whether it may send now; reason: the switch that decided it
--   state      persisted in the data directory: last_sent, next_due, last_built,
--              last_result, reloads, reload_error, process (the target's CPU time at the
--              last report)
--   spool      its reports waiting to be sent (daemon/spool.lua)
--   timer      the timer of its next report, if armed
--   previous   the last report built, decoded (false when there is none), for figures
--              counted between reports
--   failed     a report failed to build or to be delivered (for --once's exit code)
--   building   a report is being built (in its process): the next one due is skipped
--   flushing   its spool is being delivered; stopped: its script was removed
--
-- D, the daemon's state, is given to every function: ctx, data_dir, flags, scale, pid,
-- pidfile,
-- endpoint, dry_run, once, session_id, stopping, sched_opts(p), products.
local async = require("phonehome.base.async")
local core = require("phonehome.core")
local datadir = require("phonehome.daemon.datadir")
local defprocess = require("phonehome.definition.process")
local disclosure = require("phonehome.definition.disclosure")
local json = require("phonehome.json")
local log = require("phonehome.base.log")
local pidfile = require("phonehome.base.pidfile")
local process = require("phonehome.base.process")
local optout = require("phonehome.definition.optout")
local sandbox = require("phonehome.sandbox")
local schedule = require("phonehome.definition.schedule")
local send = require("phonehome.daemon.send")
local settings = require("phonehome.definition.settings")
local spool = require("phonehome.daemon.spool")
local statsd = require("phonehome.daemon.statsd")
local timefmt = require("phonehome.timefmt")

local M = {}

function M.save(D, p)
    datadir.write_state(D.data_dir, p.name, p.state)
end

-- The opt-out switches as the product itself reads them, when its process is known
-- (target: { pid } from M.target): its environment first, then phonehome's; its command
-- line's flags as well as those given after `--`; DO_NOT_TRACK from either. settings:
-- the settings with what was read of the product's config (default p.settings).
local function decide(D, p, target, product_settings)
    local getenv, flags = core.getenv, D.flags
    local environ, argv = {}, {}
    if target and target.pid then
        environ = core.process_environ(target.pid) or {}
        argv = core.process_cmdline(target.pid) or {}
        getenv = function(name)
            if name == "DO_NOT_TRACK" and not optout.do_not_track(function(n)
                return environ[n] end) then
                return core.getenv(name)
            end
            return environ[name] or core.getenv(name)
        end
        flags = setmetatable({}, { __index = function(_, name)
            return D.flags[name] or process.flag(argv, name) ~= nil
        end })
    end
    local sending, reason = optout.decide(p.def, getenv, product_settings or p.settings, flags)
    -- say where a switch was read when it was the product's own
    local name = reason and (reason:match("^([%w_]+)=") or reason:match("^flag (%S+)$"))
    if name and (environ[name] or (process.flag(argv, name) ~= nil and not D.flags[name])) then
        reason = reason .. " (product process " .. target.pid .. ")"
    end
    return sending, reason
end

-- target(D, p) -> { pid } of the product's process: --pid, the pid file read again now
-- (the server may have restarted), or the oldest process matching the definition's
-- process section; or { error } saying why there is none; nil when nothing names one.
function M.target(D, p)
    if D.pidfile then
        local pid, err = pidfile.read(D.pidfile)
        return { pid = pid, error = err }
    end
    if D.pid then return { pid = D.pid } end
    if defprocess.matches(p.def) then
        local pid, err = process.find(p.def.process)
        return { pid = pid, error = err }
    end
    return nil
end

-- The names of the settings given with --set or --config (not defaults), which the
-- product's own config does not override.
local function given(D, name)
    local out = {}
    for k in pairs(D.ctx.from_config[name] or {}) do out[k] = true end
    for k in pairs(D.ctx.from_set[name] or {}) do out[k] = true end
    return out
end

-- The error of a call, with the traceback for the log and the message alone for the state.
local function trace(err)
    local msg = type(err) == "string" and err or "(error object is a " .. type(err) .. ")"
    return { msg = msg, trace = debug.traceback(msg, 2) }
end

-- A report leaves the window it was built from when it is delivered (cut): the samples
-- taken and the metrics' segments begun before its build started; the values it gave
-- ctx.increase become those the next report counts from. Either way its entry goes.
local function close_window(p, key, cut)
    local marks = p.state.marks_due and p.state.marks_due[key]
    if marks then
        p.state.marks_due[key] = nil
        if cut then
            p.state.marks = p.state.marks or {}
            for name, v in pairs(marks) do p.state.marks[name] = v end
        end
    end
    local upto = p.state.cuts and p.state.cuts[key]
    if not upto then return end
    p.state.cuts[key] = nil
    if not cut then return end
    for _, w in pairs(p.state.samples or {}) do
        local keep_t, keep_v = {}, {}
        for i, t in ipairs(w.t or {}) do
            if t > upto then keep_t[#keep_t + 1], keep_v[#keep_v + 1] = t, w.v[i] end
        end
        w.t, w.v, w.dropped = keep_t, keep_v, 0
    end
    statsd.close_window(p, upto)
end

local function flush(D, p)
    while p.spool:head() and not D.stopping do
        if not p.sending then break end
        local e = p.spool:head()
        local result, detail = send.send(p, e, {
            base = D.endpoint, scale = D.scale,
            stopping = function() return D.stopping end,
            sending = function() return p.sending end,
        })
        if result == "delivered" or result == "rejected" then
            -- a delivered report ends the window of samples it was built from; one that
            -- is lost leaves it to the next
            close_window(p, e.key, result == "delivered")
            p.spool:remove(e)
            p.state.last_sent = core.time()
            p.state.last_result = result .. (detail and (": " .. detail) or "")
            M.save(D, p)
            if result == "rejected" then p.failed = true end
        elseif result == "failed" and p.def.delivery.drop_failed then
            -- the product never resends a report (Synapse, Coroot, ...): neither do we
            close_window(p, e.key, false)
            p.spool:remove(e)
            p.state.last_result = "failed, dropped: " .. tostring(detail)
            p.failed = true
            log.warn({ product = p.name, msg = "report dropped: the product does not resend",
                       error = detail })
            M.save(D, p)
        else
            p.state.last_result = result .. ": " .. tostring(detail)
            p.failed = result ~= "stopped"
            M.save(D, p)
            break
        end
    end
end

-- Delivers the spool in order; stops at the first report that cannot be delivered now.
-- An error in it fails this flush only: the report stays spooled for the next one.
function M.flush(D, p)
    if p.flushing then return end
    p.flushing = true
    local ok, err = xpcall(flush, trace, D, p)
    p.flushing = false
    if not ok then
        log.error({ product = p.name, msg = "delivery failed", error = err.trace })
        p.state.last_result = "failed: " .. err.msg
        p.failed = true
        M.save(D, p)
    end
end

-- The options of a build, or of a read of the sources before one (see sandbox.build), or
-- of a sample of a source.
local function build_opts(D, p, target, dry)
    return {
        settings = p.settings, settings_given = given(D, p.name), dry = dry,
        pid = target.pid, pid_error = target.error, session_id = D.session_id,
        instance_id = dry and core.uuid() or datadir.instance_id(D.data_dir, p.def),
        last_sent = p.state.last_sent, previous = json.without_nulls(p.previous) or nil,
        previous_process = p.state.process, samples = p.state.samples,
        metrics = statsd.window(p), marks = p.state.marks,
    }
end

-- sample_opts(D, p) -> the options of a sampler's call (sandbox Product:sample).
function M.sample_opts(D, p)
    return build_opts(D, p, M.target(D, p) or {}, false)
end

-- build(D, p [, dry [, decide]]) -> json, warnings | nil, errors | false, and what was
-- read of the sources: a report of the product's version from what the data directory
-- holds (the last report, the schedule state) and what its sources read now, as the
-- daemon sends it and `show` prints it. The target process is found again now; a target
-- that is gone fails only the fields that use it. A dry build (a reload's) touches no
-- file and reads no source: a fresh instance id. decide(settings) -> false: not to be
-- built (see Product:build).
function M.build(D, p, dry, decide_hook)
    if p.previous == nil then
        -- the last report an earlier run built, for figures counted between reports
        p.previous = datadir.read_last_report(D.data_dir, p.def) or false
    end
    local target = M.target(D, p) or {}
    local hooks = { decide = decide_hook and function(product_settings)
        return decide_hook(target, product_settings)
    end }
    local body, problems, info = p.product:build(build_opts(D, p, target, dry), hooks)
    -- the target's CPU time now, for the next report's average since this one
    local proc = target.pid and core.process(target.pid)
    if proc then
        p.state.process = { pid = proc.pid, start_time = proc.start_time, time = core.time(),
                            cpu = proc.user_cpu + proc.system_cpu }
    end
    return body, problems, info
end

-- The settings the product runs with now: those of its last read of the product's own
-- config when there was one (see adopt), else those given to phonehome.
function M.settings_now(p)
    return p.read_settings or p.settings
end

-- Takes settings read from the product's config (product_settings) as the ones it runs
-- with: its schedule, notice and delivery follow them. A duration of the schedule the
-- config gives out of range is logged, and the schedule keeps those given to phonehome.
-- Returns whether a duration of the schedule changed.
local function adopt(p, product_settings)
    local names = schedule.setting_names(p.def.schedule)
    local name, err = schedule.settings_problem(p.def.schedule, product_settings)
    if name then
        log.warn({ product = p.name, setting = name, error = err,
                   msg = "the product's config gives a schedule phonehome cannot keep; "
                       .. "the setting's value given to phonehome is used" })
        local kept = {}
        for k, v in pairs(product_settings) do kept[k] = v end
        for _, n in ipairs(names) do kept[n] = p.settings[n] end
        product_settings = kept
    end
    local before = M.settings_now(p)
    p.read_settings = product_settings
    for _, n in ipairs(names) do
        if before[n] ~= product_settings[n] then return true end
    end
    return false
end

local arm

local function log_next(p)
    log.info({ product = p.name, msg = "next report", due = timefmt.iso8601(p.state.next_due, 3) })
end

-- One scheduled report: decide, build, keep the last report, spool, deliver.
local function report(D, p)
    if p.building then
        -- a stuck build is killed at its time limit; until then, no second one
        log.warn({ product = p.name,
                   msg = "report skipped: the previous one is still being built" })
        return
    end
    p.building = true
    local built_from = core.time()
    -- what the product told until now is in this report; what it tells from now on, in
    -- the next
    statsd.cut(D, p, built_from)
    local built, body, problems, info = pcall(M.build, D, p, false, function(target,
                                                                        product_settings)
        local sending, why = decide(D, p, target, product_settings)
        if sending == nil then
            -- a value the product itself would refuse: nothing is sent, and why is said
            log.error({ product = p.name, msg = "opt-out switch not understood; not sending",
                        error = why })
            p.sending, p.reason = false, why
            return false
        end
        p.sending, p.reason = sending, why
        if adopt(p, product_settings) and p.timer and p.armed then
            -- the product's config times its reports: the next one follows it now
            p.state.next_due = schedule.after(p.def.schedule, D.sched_opts(p), p.armed.due,
                                              p.armed.started)
            M.save(D, p)
            log_next(p)
            arm(D, p)
        end
        return sending or p.def.optout.build_when_off
    end)
    p.building = false
    if not built then error(body, 0) end
    if body == false then
        log.info({ product = p.name, msg = "not sending", reason = p.reason })
        return
    end
    if not body then
        for _, e in ipairs(problems) do
            log.error({ product = p.name, msg = "report not built", error = e })
        end
        p.failed = true
        return
    end
    for _, w in ipairs(problems) do log.warn({ product = p.name, msg = w }) end
    p.state.last_built = core.time()
    if info and info.settings then p.read_settings = info.settings end
    p.previous = json.decode(body) or false
    datadir.write_last_report(D.data_dir, p.def, body)
    if not p.sending or D.dry_run then
        log.info({ product = p.name, msg = "report built, not sent",
                   reason = D.dry_run and "--dry-run" or p.reason, report = body })
        return
    end
    if p.def.delivery.log_report then
        log.info({ product = p.name, msg = "sending report", report = body })
    end
    local key = core.uuid()
    if next(p.def.samplers) or next(p.def.metrics) then
        p.state.cuts = p.state.cuts or {}
        p.state.cuts[key] = built_from
    end
    if info and info.marks and next(info.marks) then
        p.state.marks_due = p.state.marks_due or {}
        p.state.marks_due[key] = info.marks
    end
    p.spool:push(key, body)
    local wait = D.once and 0 or schedule.seconds(p.def.schedule.send_delay, M.settings_now(p),
                                                  D.scale)
    if wait > 0 then async.sleep(wait) end
    M.flush(D, p)
end

-- One scheduled report (see report above); whatever goes wrong in it is logged and fails
-- this report only.
function M.report(D, p)
    local ok, err = xpcall(report, trace, D, p)
    if not ok then
        p.failed = true
        log.error({ product = p.name, msg = "report failed", error = err.trace })
    end
end

-- Arms the timer of the product's next report, due at p.state.next_due. When it fires,
-- the report after it is armed first, so that nothing in a report (an error, a long
-- wait for the endpoint) can stop the schedule; a report still being delivered when the
-- next is built leaves it in the spool, delivered in order by the same flush.
function arm(D, p)
    if p.timer then p.timer:close() end
    -- at least 1 ms: libuv runs a 0 ms timer armed by a timer in the same pass; at most
    -- async.MAX_WAIT: a later report is armed again when that much has passed
    local ms = math.max(1, async.timer_ms(p.state.next_due - core.time()))
    p.timer = core.timer(ms, function()
        p.timer = nil
        if D.stopping or p.stopped then return end
        if ms == async.MAX_WAIT and p.state.next_due > core.time() then return arm(D, p) end
        local due, started = p.state.next_due, core.time()
        -- counted from when this report started, sent or not (MongooseIM's rule)
        p.armed = { due = due, started = started }
        p.state.next_due = schedule.after(p.def.schedule, D.sched_opts(p), due, started)
        M.save(D, p)
        log_next(p)
        arm(D, p)
        async.spawn(function()
            M.report(D, p)
            if not (D.stopping or p.stopped) then M.save(D, p) end
        end)
    end)
end

-- load_version(D, name) -> a version of a product (name, product, def, settings,
-- sending, reason), or nil, message when it cannot run.
function M.load_version(D, name)
    local ctx = D.ctx
    local prod, problems = sandbox.open_in(ctx.scripts, name)
    if not prod then return nil, table.concat(problems, "; ") end
    local typed, err = settings.resolve(prod.def, ctx.from_set[name], ctx.from_config[name])
    problems = datadir.problems(prod.def)
    if #problems > 0 then typed, err = nil, prod.path .. ": " .. table.concat(problems, "; ") end
    if not typed then
        prod:close()
        return nil, err
    end
    local v = { name = name, product = prod, def = prod.def, settings = typed }
    local sending, why = decide(D, v)
    if sending == nil then
        prod:close()
        return nil, why
    end
    v.sending, v.reason = sending, why
    return v
end

-- load(D, name) -> a product to run: a loaded version with its schedule state and spool
-- from disk; or nil, message.
function M.load(D, name)
    local p, why = M.load_version(D, name)
    if not p then return nil, why end
    datadir.migrate(D.data_dir, p.def)
    p.state = datadir.load_state(D.data_dir, name)
    p.spool = spool.open(D.data_dir, name, p.def.delivery)
    return p
end

-- Delivers what is spooled, in a coroutine of its own, when the product may send now.
function M.resume_sending(D, p)
    if p.sending and not D.dry_run and p.spool:depth() > 0 then async.spawn(M.flush, D, p) end
end

-- Whether deciding, the notice or the schedule take a setting from the product's config.
local function reads_product_first(def)
    local names = schedule.setting_names(def.schedule)
    for _, c in ipairs(def.optout.settings) do names[#names + 1] = c.name end
    for name in pairs(def.disclosure.quiet_when or {}) do names[#names + 1] = name end
    local wanted = {}
    for _, name in ipairs(names) do wanted[name] = true end
    for _, s in ipairs(def.settings) do
        if wanted[s.name] and s.source then return true end
    end
    return false
end

-- The settings with what the product's config says of its switches, notice and schedule
-- (only the sources those read are read), or nil when they cannot be read.
local function read_first(D, p, target)
    local read
    local ok, err = pcall(p.product.read_sources, p.product, build_opts(D, p, target, false), {
        decide = function(product_settings)
            read = product_settings
            return false
        end,
    })
    if not ok then log.warn({ product = p.name, msg = "product config not read", error = err }) end
    return read
end

local function announce(D, p)
    local text = disclosure.text(p.def, p.sending, M.settings_now(p))
    if text then
        io.stderr:write(text, "\n")
        io.stderr:flush()
    end
    log.info({ product = p.name, msg = "started", sending = tostring(p.sending), reason = p.reason,
               version = p.def.version })
    if D.once then return end
    p.state.next_due = schedule.first(p.def.schedule, D.sched_opts(p))
    M.save(D, p)
    log_next(p)
    arm(D, p)
    M.resume_sending(D, p)
end

-- Starts a loaded product: its decision and notice as the product's process and config
-- say them, its first due time, its timer, and the reports an earlier run left in its
-- spool. When the product's config decides any of it, that is read first (in a coroutine
-- of its own: the loop goes on meanwhile).
function M.start(D, p)
    if D.once or not reads_product_first(p.def) then
        local target = M.target(D, p)
        if target and target.pid and not D.once then
            local sending, why = decide(D, p, target)
            if sending ~= nil then p.sending, p.reason = sending, why end
        end
        return announce(D, p)
    end
    async.spawn(function()
        local target = M.target(D, p) or {}
        local product_settings = read_first(D, p, target)
        if product_settings then adopt(p, product_settings) end
        local sending, why = decide(D, p, target, product_settings)
        if sending == nil then
            log.error({ product = p.name, msg = "opt-out switch not understood; not sending",
                        error = why })
            sending = false
        end
        p.sending, p.reason = sending, why
        if not (D.stopping or p.stopped) then announce(D, p) end
    end)
end

-- Stops a product whose script was removed; its state stays on disk.
function M.stop(D, p)
    if p.timer then p.timer:close() end
    p.timer = nil
    p.stopped = true
    M.save(D, p)
    p.product:close()
    for i, q in ipairs(D.products) do
        if q == p then table.remove(D.products, i) break end
    end
    log.info({ product = p.name, msg = "stopped: its script was removed" })
end

-- The product's state as one log line (SIGUSR1).
function M.state_line(p)
    return { product = p.name, msg = "state", sending = tostring(p.sending), reason = p.reason,
             next_due = p.state.next_due and timefmt.iso8601(p.state.next_due, 3) or "none",
             last_sent = p.state.last_sent and timefmt.iso8601(p.state.last_sent, 3) or "never",
             spool = p.spool:depth() }
end

return M
