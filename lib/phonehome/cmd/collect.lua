-- `phonehome collect`: receives reports over HTTP and stores them (collect/).
local context = require("phonehome.cmd._context")

local M = {
    usage = "collect",
    summary = "receive reports over HTTP and store them in SQLite",
    args = "none",
    options = { listen = "value", db = "value", ["max-body"] = "value", ga4 = "list",
                ["store-client"] = "flag", print = "flag", ["tls-cert"] = "value",
                ["tls-key"] = "value", ["max-client-connections"] = "value" },
    help = [[
  --listen ADDR      address to serve (default 127.0.0.1:8080; port 0: any free)
  --db FILE          the SQLite database (default: reports.db in the data dir)
  --max-body BYTES   largest report accepted (default 1048576)
  --max-client-connections N
                     connections one client address may hold open (default 64,
                     at most 1000, the limit of all connections)
  --ga4 G-ID=PRODUCT store GA4 Measurement Protocol hits of G-ID as PRODUCT
                     (repeatable)
  --store-client     also store each sender's address and user agent
  --print            print each stored report on stdout as a JSON line
  --tls-cert FILE    serve HTTPS with this PEM certificate ...
  --tls-key FILE     ... and this PEM private key
]],
}

function M.run(ctx)
    local core = require("phonehome.core")
    local datadir = require("phonehome.daemon.datadir")
    local sqlite = require("phonehome.collect.sqlite")
    local o = ctx.options
    local max_body = math.tointeger(tonumber(o["max-body"] or 1048576))
    if not max_body or max_body <= 0 then
        return context.fail("--max-body: expected a positive number of bytes")
    end
    local per_client = math.tointeger(tonumber(o["max-client-connections"] or 64))
    if not per_client or per_client <= 0 or per_client > 1000 then
        return context.fail("--max-client-connections: expected a number from 1 to 1000")
    end
    if not o.db then core.mkdir(ctx.data_dir) end
    local code, err = require("phonehome.collect").serve({
        listen = o.listen or "127.0.0.1:8080", db = o.db or datadir.reports_db(ctx.data_dir),
        scripts = ctx.scripts, max_body = max_body, max_client_connections = per_client,
        ga4 = o.ga4,
        store_client = o["store-client"] == true, tls_cert = o["tls-cert"], tls_key = o["tls-key"],
        on_store = o.print and function(row)
            io.stdout:write(sqlite.line(row), "\n")
            io.stdout:flush()
        end,
    })
    if not code then return context.fail(err) end
    return code
end

return M
