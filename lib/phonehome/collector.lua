-- `phonehome collect` and `phonehome reports`: the receiver's process — database,
-- product definitions, HTTP server, graceful stop — and the reader of what it stored.
local core = require("phonehome.core")
local collect = require("phonehome.collect")
local drain = require("phonehome.drain")
local json = require("phonehome.json")
local log = require("phonehome.log")
local product = require("phonehome.product")
local reportdb = require("phonehome.reportdb")
local timefmt = require("phonehome.timefmt")

local M = {}

M.GRACE = 5   -- seconds a stop waits for requests in flight

local function fail(msg)
    io.stderr:write("phonehome: ", msg, "\n")
    return 1
end

local function db_path(ctx)
    return ctx.options.db or (ctx.data_dir .. "/reports.db")
end

-- Every product in the scripts directory, each in its own sandbox. A script that does
-- not load is logged and its product refused (404), the others are served.
local function load_products(dir)
    local products = {}
    for _, name in ipairs(product.names(dir)) do
        local p, problems = product.open_in(dir, name)
        if p then
            products[name] = p
        else
            for _, e in ipairs(problems) do log.error({ product = name, msg = "script not loaded", error = e }) end
        end
    end
    return products
end

-- --ga4 G-XXXX=product, repeatable.
local function ga4_map(list, products)
    local map = {}
    for _, item in ipairs(list or {}) do
        local id, name = item:match("^([%w%-]+)=([%w_%-]+)$")
        if not id then return nil, "--ga4 " .. item .. ": expected MEASUREMENT_ID=PRODUCT" end
        if not products[name] then return nil, "--ga4 " .. item .. ": unknown product '" .. name .. "'" end
        map[id] = name
    end
    return map
end

function M.collect(ctx)
    local max_body = math.tointeger(tonumber(ctx.options["max-body"] or 1048576))
    if not max_body or max_body <= 0 then return fail("--max-body: expected a positive number of bytes") end
    local path = db_path(ctx)
    if not ctx.options.db then core.mkdir(ctx.data_dir) end
    local db, err = reportdb.open(path)
    if not db then return fail("cannot open the database: " .. err) end
    local products = load_products(ctx.scripts)
    local ga4
    ga4, err = ga4_map(ctx.options.ga4, products)
    if not ga4 then
        db:close()
        return fail(err)
    end
    local print_row = ctx.options.print and function(row)
        io.stdout:write(M.line(row), "\n")
        io.stdout:flush()
    end
    local handler = collect.new({ db = db, products = products, ga4 = ga4, max_body = max_body,
                                  store_client = ctx.options["store-client"] == true, on_store = print_row })
    local cert, key
    if ctx.options["tls-cert"] or ctx.options["tls-key"] then
        cert, err = core.readfile(ctx.options["tls-cert"] or "--tls-cert not given")
        if cert then key, err = core.readfile(ctx.options["tls-key"] or "--tls-key not given") end
        if not cert or not key then
            db:close()
            return fail(err)
        end
    end
    local server
    server, err = core.httpd({ listen = ctx.options.listen or "127.0.0.1:8080", max_body = max_body,
                               handler = handler, tls_cert = cert, tls_key = key })
    if not server then
        db:close()
        return fail(err)
    end
    local host = (ctx.options.listen or "127.0.0.1:8080"):match("^(.*):")
    log.info({ msg = "listening", addr = host .. ":" .. server:port(), db = path,
               scheme = cert and "https" or "http" })

    local stopping = false
    local signals = {}
    local function finish()
        server:close()
        db:close()
        for _, s in ipairs(signals) do s:close() end
        log.info({ msg = "stopped" })
        core.stop()
    end
    -- Stop accepting, let the requests in flight finish (within the grace), then stop.
    local function stop(signal)
        if stopping then return end
        stopping = true
        log.info({ msg = "stopping", signal = signal, connections = server:connections() })
        server:quiesce()
        drain.drain(M.GRACE, function() return server:connections() == 0 end, finish)
    end
    signals[1] = core.signal("SIGTERM", stop)
    signals[2] = core.signal("SIGINT", stop)
    core.run()
    for _, p in pairs(products) do p:close() end
    return 0
end

-- A stored report as one JSON line; the body is JSON already and goes in as received.
function M.line(r)
    local head = json.encode({ id = r.id, received = timefmt.iso8601(r.received, 3),
                               product = r.product, instance = r.instance or json.null,
                               idempotency_key = r.idempotency_key or json.null,
                               client = r.client, user_agent = r.user_agent })
    return head:sub(1, -2) .. ',"report":' .. r.body:gsub("[\r\n]+", "") .. "}"
end

function M.reports(ctx)
    local last
    if ctx.options.last then
        last = math.tointeger(tonumber(ctx.options.last))
        if not last or last <= 0 then return fail("--last: expected a positive number") end
    end
    local path = db_path(ctx)
    if not core.exists(path) then return fail(path .. ": no such database") end
    local db, err = reportdb.open(path)
    if not db then return fail("cannot open the database: " .. err) end
    local rows
    rows, err = db:list(ctx.options.product, last)
    db:close()
    if not rows then return fail(err) end
    for _, r in ipairs(rows) do io.stdout:write(M.line(r), "\n") end
    return 0
end

return M
