-- The collector, the receiving end of reports: an HTTP server on the loop whose routes
-- (collect/routes.lua) check each report against its product's definition and store it
-- (collect/sqlite.lua). This module owns the process: the database, the definitions, the
-- server, and a graceful stop.
local async = require("phonehome.base.async")
local core = require("phonehome.core")
local log = require("phonehome.base.log")
local routes = require("phonehome.collect.routes")
local sandbox = require("phonehome.sandbox")
local sqlite = require("phonehome.collect.sqlite")

local M = {}

M.GRACE = 5   -- seconds a stop waits for requests in flight
-- Seconds a request has, from its beginning, to send its headers, and to be over: a
-- client that sends a byte every few seconds holds a connection no longer than this.
M.HEADER_TIMEOUT = 10
M.REQUEST_TIMEOUT = 60

-- The definition of every product in the scripts directory, as plain data: each script
-- is loaded and checked in a sandbox of its own, closed once its definition is read (the
-- checks of reports need no script code). A script that does not load is logged and its
-- product refused (404), the others are served.
local function load_products(dir)
    local products = {}
    for _, name in ipairs(sandbox.names(dir)) do
        local p, problems = sandbox.open_in(dir, name)
        if p then
            products[name] = p.def
            p:close()
        else
            for _, e in ipairs(problems) do
                log.error({ product = name, msg = "script not loaded", error = e })
            end
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
        if not products[name] then
            return nil, "--ga4 " .. item .. ": unknown product '" .. name .. "'"
        end
        map[id] = name
    end
    return map
end

-- The PEM texts of --tls-cert and --tls-key, both or neither; nil, message when one is
-- missing or unreadable.
local function tls_files(cert_file, key_file)
    if not cert_file and not key_file then return false end
    local cert, err = core.readfile(cert_file or "--tls-cert not given")
    if not cert then return nil, err end
    local key
    key, err = core.readfile(key_file or "--tls-key not given")
    if not key then return nil, err end
    return { cert = cert, key = key }
end

-- serve(o) -> exit code, or nil, message when it cannot start. Runs until SIGTERM or
-- SIGINT. o: listen, db (path), scripts, max_body, max_client_connections (connections
-- one address may hold), ga4 (list of G-ID=PRODUCT),
-- store_client, on_store (called with each stored row), tls_cert, tls_key (files).
function M.serve(o)
    local db, err = sqlite.open(o.db)
    if not db then return nil, "cannot open the database: " .. err end
    local products = load_products(o.scripts)
    local function fail(why)
        db:close()
        return nil, why
    end
    local ga4, tls
    ga4, err = ga4_map(o.ga4, products)
    if not ga4 then return fail(err) end
    tls, err = tls_files(o.tls_cert, o.tls_key)
    if tls == nil then return fail(err) end
    local handler = routes.new({ db = db, products = products, ga4 = ga4, max_body = o.max_body,
                                 store_client = o.store_client, on_store = o.on_store })
    local server
    server, err = core.httpd({ listen = o.listen, max_body = o.max_body, handler = handler,
                               tls_cert = tls and tls.cert or nil,
                               tls_key = tls and tls.key or nil,
                               max_client_connections = o.max_client_connections,
                               header_timeout = M.HEADER_TIMEOUT,
                               request_timeout = M.REQUEST_TIMEOUT })
    if not server then return fail(err) end
    log.info({ msg = "listening", addr = o.listen:match("^(.*):") .. ":" .. server:port(),
               db = o.db, scheme = tls and "https" or "http" })

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
        async.drain(M.GRACE, function() return server:connections() == 0 end, finish)
    end
    signals[1] = core.signal("SIGTERM", stop)
    signals[2] = core.signal("SIGINT", stop)
    core.run()
    return 0
end

return M
