-- `phonehome reports`: prints the reports a collector stored, as JSON lines.
local context = require("phonehome.cmd._context")

local M = {
    usage = "reports",
    summary = "print stored reports as JSON lines",
    args = "none",
    options = { db = "value", product = "value", last = "value" },
    help = [[
  --db FILE          the SQLite database (default: reports.db in the data dir)
  --product P        only this product's
  --last N           only the last N
]],
}

function M.run(ctx)
    local core = require("phonehome.core")
    local datadir = require("phonehome.daemon.datadir")
    local sqlite = require("phonehome.collect.sqlite")
    local last
    if ctx.options.last then
        last = math.tointeger(tonumber(ctx.options.last))
        if not last or last <= 0 then return context.fail("--last: expected a positive number") end
    end
    local path = ctx.options.db or datadir.reports_db(ctx.data_dir)
    if not core.exists(path) then return context.fail(path .. ": no such database") end
    local db, err = sqlite.open(path)
    if not db then return context.fail("cannot open the database: " .. err) end
    local rows
    rows, err = db:list(ctx.options.product, last)
    db:close()
    if not rows then return context.fail(err) end
    for _, r in ipairs(rows) do io.stdout:write(sqlite.line(r), "\n") end
    return 0
end

return M
