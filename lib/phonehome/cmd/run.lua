-- `phonehome run [PRODUCT...]`: the daemon, every product on its schedule (daemon/).
local context = require("phonehome.cmd._context")

local M = {
    usage = "run [PRODUCT...] [-- PRODUCT-ARGS]",
    summary = "the daemon: send each product's report on its schedule;\nPRODUCT-ARGS are "
        .. "the products' own flags (opt-out switches)",
    args = "any",
    options = { pid = "value", pidfile = "value", endpoint = "value", once = "flag",
                ["dry-run"] = "flag", ["time-scale"] = "value", statsd = "value",
                ["statsd-unix"] = "value" },
    help = context.pid_help .. [[
  --endpoint BASE    send every product to BASE/v1/report/PRODUCT (a collector)
  --once             build and send each report now; exit 0 if all were delivered
  --dry-run          build and log reports, send nothing
  --time-scale N     divide every duration by N (demos, tests)
  --statsd HOST:PORT where to take StatsD lines over UDP while a product declares
                     metrics (default 127.0.0.1:8125; "off": not over UDP)
  --statsd-unix PATH take StatsD lines on a Unix datagram socket made at PATH too
]],
}

function M.run(ctx)
    local pid, err = context.prepare(ctx)
    if not pid then return context.fail(err) end
    ctx.pid = pid ~= 0 and pid or nil
    return require("phonehome.daemon").run(ctx)
end

return M
