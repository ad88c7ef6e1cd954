-- The command line: parses arguments, runs show, docs and check, and hands run, status,
-- collect and reports to their modules.
-- Exit codes: 0 success, 1 a failure the message explains, 2 bad usage.
local core = require("phonehome.core")
local product = require("phonehome.product")
local settings = require("phonehome.settings")
local datadir = require("phonehome.datadir")
local docs = require("phonehome.docs")
local log = require("phonehome.log")

local M = {}

M.usage = [[
Usage: phonehome COMMAND [ARGS] [OPTIONS] [-- PRODUCT-ARGS]

Runs products' anonymous usage statistics ("phone home" reports), each defined by
one Lua script.

Commands:
  run [PRODUCT...]   the daemon: send each product's report on its schedule;
                     PRODUCT-ARGS are the products' own flags (opt-out switches)
  status [PRODUCT...] whether each product sends and why, instance id, last sent,
                     next due, spool depth
  show PRODUCT       build one report now from real probes and print it as JSON;
                     nothing is sent
  docs PRODUCT       print the product's fields, schedule, endpoint, opt-out
                     switches and disclosure as Markdown
  check [FILE...]    load and validate scripts (all of --scripts by default),
                     including one dry build; prints file:line for each problem
  collect            receive reports over HTTP and store them in SQLite
  reports            print stored reports as JSON lines

Options:
  --scripts DIR      product scripts (default: the bundled scripts/)
  --data-dir DIR     where instance ids are kept (default: $STATE_DIRECTORY,
                     /var/lib/phonehome as root, else $XDG_STATE_HOME/phonehome)
  --set P.KEY=VALUE  set a product's setting (repeatable; wins over --config)
  --config FILE      a Lua file of settings: return { product = { key = value } }
  --pid N            the product's server process, described by process probes
  --pidfile FILE     the same, read from a pid file

Options of run and status:
  --endpoint BASE    send every product to BASE/v1/report/PRODUCT (a collector)
  --once             build and send each report now; exit 0 if all were delivered
  --dry-run          build and log reports, send nothing
  --time-scale N     divide every duration by N (demos, tests)
  --json             status: one JSON object per product

Options of collect and reports:
  --listen ADDR      address to serve (default 127.0.0.1:8080; port 0: any free)
  --db FILE          the SQLite database (default: reports.db in the data dir)
  --max-body BYTES   largest report accepted (default 1048576)
  --ga4 G-ID=PRODUCT store GA4 Measurement Protocol hits of G-ID as PRODUCT
                     (repeatable)
  --store-client     also store each sender's address and user agent
  --print            collect: print each stored report on stdout as a JSON line
  --tls-cert FILE    collect: serve HTTPS with this PEM certificate ...
  --tls-key FILE     ... and this PEM private key
  --product P        reports: only this product's
  --last N           reports: only the last N

  -h, --help         print this help and exit
  -V, --version      print the version and exit

Exit status: 0 success, 1 failure (the message says why), 2 bad usage.
]]

-- Options each command accepts: "value" takes an argument, "list" one each time it is
-- given, "flag" none.
local common = { scripts = "value", set = "list", config = "value", ["data-dir"] = "value" }
local commands = {
    show = { args = "one", options = { pid = "value", pidfile = "value" } },
    docs = { args = "one", options = {} },
    check = { args = "any", options = { pid = "value", pidfile = "value" } },
    collect = { args = "none", options = { listen = "value", db = "value", ["max-body"] = "value",
                                           ga4 = "list", ["store-client"] = "flag",
                                           print = "flag", ["tls-cert"] = "value",
                                           ["tls-key"] = "value" } },
    reports = { args = "none", options = { db = "value", product = "value", last = "value" } },
    run = { args = "any", options = { pid = "value", pidfile = "value", endpoint = "value",
                                      once = "flag", ["dry-run"] = "flag", ["time-scale"] = "value" } },
    status = { args = "any", options = { json = "flag" } },
}

local function usage_error(msg)
    io.stderr:write("phonehome: ", msg, "\n\n", M.usage)
    return 2
end

local function fail(msg)
    io.stderr:write("phonehome: ", msg, "\n")
    return 1
end

local function takes(command, name)
    return common[name] or (commands[command] and commands[command].options[name])
end

-- parse(argv) -> { command, args, options } or nil, message. Options may come before
-- or after the command; each must be one the command accepts.
function M.parse(argv)
    local out = { args = {}, options = {} }
    local given = {}
    local i = 1
    out.flags = {}
    while i <= #argv do
        local a = argv[i]
        if a == "--" then
            -- the products' own command-line flags
            for j = i + 1, #argv do
                local name, value = argv[j]:match("^(%-%-?[^=]+)=?(.*)$")
                if name then out.flags[name] = value ~= "" and value or true end
            end
            break
        elseif a == "-h" or a == "--help" then
            out.help = true
        elseif a == "-V" or a == "--version" then
            out.version = true
        elseif a:sub(1, 2) == "--" and #a > 2 then
            local name, value = a:match("^%-%-([%w%-]+)=(.*)$")
            name = name or a:sub(3)
            local kind = common[name]
            for c in pairs(commands) do kind = kind or commands[c].options[name] end
            if not kind then return nil, "unknown option '" .. a .. "'" end
            if kind == "flag" then
                if value ~= nil then return nil, "option --" .. name .. " takes no value" end
                value = true
            elseif value == nil then
                i = i + 1
                value = argv[i]
                if value == nil then return nil, "option --" .. name .. " needs a value" end
            end
            given[#given + 1] = name
            if kind == "list" then
                out.options[name] = out.options[name] or {}
                table.insert(out.options[name], value)
            else
                out.options[name] = value
            end
        elseif a:sub(1, 1) == "-" and a ~= "-" then
            return nil, "unknown option '" .. a .. "'"
        elseif not out.command then
            if not commands[a] then return nil, "unknown command '" .. a .. "'" end
            out.command = a
        else
            out.args[#out.args + 1] = a
        end
        i = i + 1
    end
    if out.help or out.version then return out end
    if not out.command then return nil, "no command given" end
    for _, name in ipairs(given) do
        if not takes(out.command, name) then
            return nil, "option --" .. name .. " does not apply to " .. out.command
        end
    end
    if out.options.pid and out.options.pidfile then
        return nil, "give --pid or --pidfile, not both"
    end
    local spec = commands[out.command]
    if spec.args == "one" and #out.args ~= 1 then
        return nil, out.command .. " takes exactly one PRODUCT"
    elseif spec.args == "none" and #out.args > 0 then
        return nil, out.command .. " takes no arguments, got '" .. out.args[1] .. "'"
    end
    return out
end

-- Settings from --set and --config, checked for products that do not exist.
local function gather_settings(ctx)
    local from_set, err = settings.parse_set(ctx.options.set or {})
    if not from_set then return nil, err end
    local from_config = {}
    if ctx.options.config then
        from_config, err = product.read_data(ctx.options.config)
        if not from_config then return nil, err end
    end
    local known = {}
    for _, n in ipairs(product.names(ctx.scripts)) do known[n] = true end
    for name in pairs(from_set) do
        if not known[name] then return nil, "--set: unknown product '" .. name .. "'" end
    end
    for name, t in pairs(from_config) do
        if not known[name] then return nil, "--config: unknown product '" .. tostring(name) .. "'" end
        if type(t) ~= "table" then return nil, "--config: " .. name .. " must be a table of "
            .. "settings" end
    end
    ctx.from_set, ctx.from_config = from_set, from_config
    return true
end

-- The target process: --pid, --pidfile, or nil for phonehome itself.
local function target_pid(ctx)
    local pid = ctx.options.pid
    if ctx.options.pidfile then
        local text, err = core.readfile(ctx.options.pidfile)
        if not text then return nil, err end
        pid = text:match("^%s*(%d+)%s*$")
        if not pid then return nil, ctx.options.pidfile .. ": does not hold a process id" end
    end
    if pid == nil then return 0 end
    local n = math.tointeger(tonumber(pid))
    if not n or n <= 0 then return nil, "--pid: not a process id: " .. tostring(pid) end
    local ok, err = core.process(n)
    if not ok then return nil, err end
    return n
end

local function open_product(ctx, name)
    if not core.exists(product.path(ctx.scripts, name)) then
        local known = product.names(ctx.scripts)
        return nil, { string.format("unknown product '%s' (in %s: %s)", name, ctx.scripts,
            #known > 0 and table.concat(known, ", ") or "none") }
    end
    return product.open_in(ctx.scripts, name)
end

-- Builds a product's report once with the command line's settings.
-- A dry build (check) touches no file: its instance id is a fresh one.
local function build_once(ctx, p, pid, dry)
    local typed, err = settings.resolve(p.def, ctx.from_set[p.name], ctx.from_config[p.name])
    if not typed then return nil, { err } end
    local id
    if dry then
        id = core.uuid()
    else
        id = datadir.instance_id(ctx.data_dir, p.def)
    end
    local json, problems = p:build({
        settings = typed, pid = pid, session_id = ctx.session_id, instance_id = id,
    })
    if json then
        for _, w in ipairs(problems) do log.warn({ product = p.name, msg = w }) end
    end
    return json, problems
end

-- What a build needs from the command line: settings and the target process.
local function prepare(ctx)
    local ok, err = gather_settings(ctx)
    if not ok then return nil, err end
    return target_pid(ctx)
end

local run = {}

function run.show(ctx)
    local pid, err = prepare(ctx)
    if not pid then return fail(err) end
    local p, problems = open_product(ctx, ctx.args[1])
    if not p then return fail(table.concat(problems, "\n")) end
    local json
    json, problems = build_once(ctx, p, pid)
    p:close()
    if not json then
        for _, e in ipairs(problems) do io.stderr:write("phonehome: ", p.name, ": ", e, "\n") end
        return 1
    end
    io.stdout:write(json, "\n")
    return 0
end

function run.docs(ctx)
    local p, problems = open_product(ctx, ctx.args[1])
    if not p then return fail(table.concat(problems, "\n")) end
    io.stdout:write(docs.render(p.def))
    p:close()
    return 0
end

function run.check(ctx)
    local pid, err = prepare(ctx)
    if not pid then return fail(err) end
    local files = ctx.args
    if #files == 0 then
        for _, n in ipairs(product.names(ctx.scripts)) do
            files[#files + 1] = product.path(ctx.scripts, n)
        end
        if #files == 0 then return fail("no scripts in " .. ctx.scripts) end
    end
    local bad = 0
    for _, path in ipairs(files) do
        local p, problems = product.open(path)
        if p then
            local json
            json, problems = build_once(ctx, p, pid, true)
            p:close()
            if json then problems = nil end
        end
        if problems then
            bad = bad + 1
            for _, e in ipairs(problems) do io.stderr:write(e, "\n") end
        else
            io.stdout:write(path, ": ok\n")
        end
    end
    return bad > 0 and 1 or 0
end

-- The larger commands are loaded when they run, so that show starts quickly.
function run.collect(ctx) return require("phonehome.collector").collect(ctx) end
function run.reports(ctx) return require("phonehome.collector").reports(ctx) end

function run.run(ctx)
    local pid, err = prepare(ctx)
    if not pid then return fail(err) end
    ctx.pid = pid ~= 0 and pid or nil
    return require("phonehome.daemon").run(ctx)
end

function run.status(ctx)
    local ok, err = gather_settings(ctx)
    if not ok then return fail(err) end
    return require("phonehome.status").run(ctx)
end

-- main(argv, home) -> exit code.
function M.main(argv, home)
    local ctx, err = M.parse(argv)
    if not ctx then return usage_error(err) end
    if ctx.help then
        io.stdout:write(M.usage)
        return 0
    end
    if ctx.version then
        io.stdout:write("phonehome ", core.version, "\n")
        return 0
    end
    ctx.home = home
    ctx.scripts = ctx.options.scripts or (home .. "/scripts")
    ctx.data_dir = ctx.options["data-dir"] or datadir.default()
    ctx.session_id = core.uuid()
    return run[ctx.command](ctx)
end

return M
