-- `phonehome run`: every product on its schedule in one libuv loop. Each report is
-- built, checked, spooled and delivered inside a coroutine of its own product, after
-- its opt-out switches are read again; signals stop, reload and report state.
local core = require("phonehome.core")
local datadir = require("phonehome.datadir")
local delivery = require("phonehome.delivery")
local drain = require("phonehome.drain")
local log = require("phonehome.log")
local optout = require("phonehome.optout")
local product = require("phonehome.product")
local schedule = require("phonehome.schedule")
local settings = require("phonehome.settings")
local spool = require("phonehome.spool")
local timefmt = require("phonehome.timefmt")
local watch = require("phonehome.watch")

local json_decode = require("phonehome.json").decode
local json_plain = require("phonehome.json").without_nulls

local M = {}

M.GRACE = 5   -- seconds a stop waits for transfers in flight

local function spawn(fn, ...)
    local co = coroutine.create(fn)
    local ok, err = coroutine.resume(co, ...)
    if not ok then log.error({ msg = "internal error", error = debug.traceback(co, err) }) end
end

-- The daemon's state, shared by the functions below.
local D

local function save(p)
    datadir.write_state(D.data_dir, p.name, p.state)
end

local function decide(p)
    local sending, why = optout.decide(p.def, core.getenv, p.settings, D.flags)
    return sending, why
end

-- Prints the product's disclosure in the wording of its current decision, unless a
-- setting the product names says to start quietly.
local function disclose(p)
    for name, value in pairs(p.def.disclosure.quiet_when or {}) do
        if p.settings[name] == value then return end
    end
    local text = p.sending and p.def.disclosure.on or p.def.disclosure.off
    io.stderr:write(text, "\n")
    io.stderr:flush()
end

-- Delivers the spool in order; stops at the first report that cannot be delivered now.
local function flush(p)
    if p.flushing then return end
    p.flushing = true
    while p.spool:head() and not D.stopping do
        if not p.sending then break end
        local e = p.spool:head()
        local result, detail = delivery.send(p, e, {
            base = D.endpoint, scale = D.scale,
            stopping = function() return D.stopping end,
            sending = function() return p.sending end,
        })
        if result == "delivered" or result == "rejected" then
            p.spool:remove(e)
            p.state.last_sent = core.time()
            p.state.last_result = result .. (detail and (": " .. detail) or "")
            save(p)
            if result == "rejected" then p.failed = true end
        else
            p.state.last_result = result .. ": " .. tostring(detail)
            p.failed = result ~= "stopped"
            save(p)
            break
        end
    end
    p.flushing = false
end

-- One scheduled report: decide, build, keep the last report, spool, deliver.
local function report(p)
    p.sending, p.reason = decide(p)
    if not p.sending and not p.def.optout.build_when_off then
        log.info({ product = p.name, msg = "not sending", reason = p.reason })
        return
    end
    local id = datadir.instance_id(D.data_dir, p.def)
    local last_file = D.data_dir .. "/" .. p.def.last_report
    if p.previous == nil then
        -- the last report an earlier run built, for figures counted between reports
        local text = core.readfile(last_file)
        p.previous = text and json_decode(text) or false
    end
    local json, problems = p.product:build({
        settings = p.settings, pid = D.pid, session_id = D.session_id, instance_id = id,
        last_sent = p.state.last_sent, previous = json_plain(p.previous) or nil,
        previous_process = p.state.process,
    })
    -- the target's CPU time now, for the next report's average since this one
    local proc = core.process(D.pid)
    if proc then
        p.state.process = { pid = proc.pid, start_time = proc.start_time, time = core.time(),
                            cpu = proc.user_cpu + proc.system_cpu }
    end
    if not json then
        for _, e in ipairs(problems) do log.error({ product = p.name, msg = "report not built", error = e }) end
        p.failed = true
        return
    end
    for _, w in ipairs(problems) do log.warn({ product = p.name, msg = w }) end
    p.state.last_built = core.time()
    p.previous = json_decode(json) or false
    local ok, err = core.write_atomic(last_file, json .. "\n", 420)
    if not ok then log.warn({ product = p.name, msg = "cannot write the last report", error = err }) end
    if not p.sending or D.dry_run then
        log.info({ product = p.name, msg = "report built, not sent",
                   reason = D.dry_run and "--dry-run" or p.reason, report = json })
        return
    end
    if p.def.delivery.log_report then log.info({ product = p.name, msg = "sending report", report = json }) end
    p.spool:push(core.uuid(), json)
    local wait = D.once and 0 or schedule.seconds(p.def.schedule.send_delay, p.settings, D.scale)
    if wait > 0 then delivery.sleep(wait) end
    flush(p)
end

local function arm(p)
    if p.timer then p.timer:close() end
    -- at least 1 ms: libuv runs a 0 ms timer armed by a timer in the same pass
    local delay = math.max(0.001, p.state.next_due - core.time())
    p.timer = core.timer(math.floor(delay * 1000 + 0.5), function()
        p.timer = nil
        if D.stopping or p.stopped then return end
        local due, started = p.state.next_due, core.time()
        spawn(function()
            report(p)
            if D.stopping or p.stopped then return end
            -- counted from when this report started, sent or not (MongooseIM's rule)
            p.state.next_due = schedule.after(p.def.schedule, D.sched_opts(p), due, started)
            save(p)
            log.info({ product = p.name, msg = "next report", due = timefmt.iso8601(p.state.next_due, 3) })
            arm(p)
        end)
    end)
end

-- Loads a version of a product: script, settings, decision. nil, message when it
-- cannot run.
local function load_version(name)
    local ctx = D.ctx
    local prod, problems = product.open_in(ctx.scripts, name)
    if not prod then return nil, table.concat(problems, "; ") end
    local typed, err = settings.resolve(prod.def, ctx.from_set[name], ctx.from_config[name])
    if not typed then
        prod:close()
        return nil, err
    end
    local v = { name = name, product = prod, def = prod.def, settings = typed }
    local sending, why = decide(v)
    if sending == nil then
        prod:close()
        return nil, why
    end
    v.sending, v.reason = sending, why
    return v
end

-- A product to run: a loaded version, with its schedule state and spool from disk.
local function load(name)
    local p, why = load_version(name)
    if not p then return nil, why end
    p.state = datadir.read_state(D.data_dir, name)
    p.spool = spool.open(D.data_dir, name, p.def.delivery)
    return p
end

-- Starts a loaded product: its disclosure, its first due time, its timer, and the
-- reports an earlier run left in its spool.
local function start_product(p)
    disclose(p)
    log.info({ product = p.name, msg = "started", sending = tostring(p.sending), reason = p.reason,
               version = p.def.version })
    if D.once then return end
    p.state.next_due = schedule.first(p.def.schedule, D.sched_opts(p))
    save(p)
    log.info({ product = p.name, msg = "next report", due = timefmt.iso8601(p.state.next_due, 3) })
    arm(p)
    if p.spool:depth() > 0 and p.sending and not D.dry_run then spawn(flush, p) end
end

-- A removed script stops its product; its state stays on disk.
local function stop_product(p)
    if p.timer then p.timer:close() end
    p.timer = nil
    p.stopped = true
    save(p)
    p.product:close()
    for i, q in ipairs(D.products) do
        if q == p then table.remove(D.products, i) break end
    end
    log.info({ product = p.name, msg = "stopped: its script was removed" })
end

-- Loads a product's script again. The new version replaces the running one only when
-- it loads, checks, settles its settings and switches, and builds one report (not
-- sent). The record stays, so schedule state, spool, timer and identity carry over;
-- a changed schedule applies from the next due time, an endpoint from the next send,
-- an opt-out at once.
local function reload_product(p)
    local fresh, why = load_version(p.name)
    if fresh then
        local json, problems = fresh.product:build({
            settings = fresh.settings, pid = D.pid, session_id = D.session_id, instance_id = core.uuid(),
            last_sent = p.state.last_sent,
        })
        if not json then
            fresh.product:close()
            fresh, why = nil, table.concat(problems, "; ")
        end
    end
    if not fresh then
        p.state.reload_error = why
        save(p)
        log.error({ product = p.name, msg = "reload failed; the running version stays", error = why })
        return
    end
    local was_sending = p.sending
    p.product:close()
    p.product, p.def, p.settings = fresh.product, fresh.def, fresh.settings
    p.sending, p.reason = fresh.sending, fresh.reason
    p.state.reloads = (p.state.reloads or 0) + 1
    p.state.reload_error = nil
    save(p)
    log.info({ product = p.name, msg = "reloaded", sending = tostring(p.sending), reason = p.reason,
               reloads = p.state.reloads, version = p.def.version })
    if p.sending and not was_sending and p.spool:depth() > 0 and not D.dry_run then spawn(flush, p) end
end

-- Reads the scripts directory again for the given products (all when names is nil):
-- changed scripts reload, new ones start, removed ones stop.
local function rescan(names)
    local present = {}
    for _, n in ipairs(product.names(D.ctx.scripts)) do present[n] = true end
    local running = {}
    for _, p in ipairs(D.products) do running[p.name] = p end
    local wanted = names
    if not wanted then
        wanted = {}
        for n in pairs(present) do wanted[n] = true end
        for n in pairs(running) do wanted[n] = true end
    end
    local sorted = {}
    for n in pairs(wanted) do sorted[#sorted + 1] = n end
    table.sort(sorted)
    for _, name in ipairs(sorted) do
        local p = running[name]
        if D.only and not D.only[name] then
            -- the command line named other products: this one is not ours to start
            log.info({ product = name, msg = "script changed; not run here (not named on the command line)" })
        elseif p and present[name] then
            reload_product(p)
        elseif p then
            stop_product(p)
        elseif present[name] then
            local fresh, why = load(name)
            if fresh then
                D.products[#D.products + 1] = fresh
                start_product(fresh)
            else
                log.error({ product = name, msg = "product not started", error = why })
            end
        end
    end
end

local function state_line(p)
    return { product = p.name, msg = "state", sending = tostring(p.sending), reason = p.reason,
             next_due = p.state.next_due and timefmt.iso8601(p.state.next_due, 3) or "none",
             last_sent = p.state.last_sent and timefmt.iso8601(p.state.last_sent, 3) or "never",
             spool = p.spool:depth() }
end

-- run(ctx) -> exit code. ctx: scripts, data_dir, options, from_set, from_config, pid,
-- product names (args), flags (after --).
function M.run(ctx)
    local scale = tonumber(ctx.options["time-scale"] or 1)
    if not scale or scale <= 0 then
        io.stderr:write("phonehome: --time-scale: expected a positive number\n")
        return 2
    end
    local ok, err = datadir.writable(ctx.data_dir)
    if not ok then
        io.stderr:write("phonehome: data directory ", ctx.data_dir, " is not writable: ", err, "\n")
        return 1
    end
    local start = core.time()
    D = { ctx = ctx, data_dir = ctx.data_dir, flags = ctx.flags, scale = scale, pid = ctx.pid,
          endpoint = ctx.options.endpoint, dry_run = ctx.options["dry-run"] == true,
          once = ctx.options.once == true,
          session_id = core.uuid(), products = {}, stopping = false }
    function D.sched_opts(p)
        return { start = start, now = core.time(), state = p.state, settings = p.settings,
                 scale = scale, random = math.random }
    end
    local names = #ctx.args > 0 and ctx.args or product.names(ctx.scripts)
    if #ctx.args > 0 then
        D.only = {}
        for _, n in ipairs(ctx.args) do D.only[n] = true end
    end
    for _, name in ipairs(names) do
        local p, why = load(name)
        if p then
            D.products[#D.products + 1] = p
        else
            log.error({ product = name, msg = "product not started", error = why })
        end
    end
    if #D.products == 0 then
        io.stderr:write("phonehome: no product could be started\n")
        return 1
    end
    for _, p in ipairs(D.products) do start_product(p) end

    local signals = {}
    local function finish()
        for _, p in ipairs(D.products) do
            if p.timer then p.timer:close() end
            p.spool:persist()
            save(p)
        end
        for _, s in ipairs(signals) do s:close() end
        if D.watch then D.watch:close() end
        core.stop()
    end
    local function stop(signal)
        if D.stopping then return end
        D.stopping = true
        log.info({ msg = "stopping", signal = signal })
        drain.drain(M.GRACE, function() return next(delivery.active) == nil end, function()
            -- past the grace: what is still in flight stays in the spool
            for req in pairs(delivery.active) do req:cancel() end
            finish()
        end)
    end
    signals[#signals + 1] = core.signal("SIGTERM", stop)
    signals[#signals + 1] = core.signal("SIGINT", stop)
    signals[#signals + 1] = core.signal("SIGHUP", function()
        log.info({ msg = "reloading every script", signal = "SIGHUP" })
        rescan(nil)
    end)
    signals[#signals + 1] = core.signal("SIGUSR1", function()
        for _, p in ipairs(D.products) do log.info(state_line(p)) end
    end)

    local code = 0
    if ctx.options.once then
        -- every product now; done when no report is being built or delivered
        local pending = #D.products
        for _, p in ipairs(D.products) do
            spawn(function()
                report(p)
                pending = pending - 1
                if pending == 0 then stop("--once") end
            end)
        end
        core.run()
        for _, p in ipairs(D.products) do
            if p.failed or (p.sending and not D.dry_run and p.spool:depth() > 0) then code = 1 end
        end
    else
        D.watch = watch.start(ctx.scripts, rescan)
        core.run()
    end
    for _, p in ipairs(D.products) do p.product:close() end
    log.info({ msg = "stopped" })
    return code
end

return M
