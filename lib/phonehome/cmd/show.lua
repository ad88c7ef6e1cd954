-- `phonehome show PRODUCT`: builds one report now from real probes and prints it as
-- JSON; nothing is sent.
local context = require("phonehome.cmd._context")

local M = {
    usage = "show PRODUCT",
    summary = "build one report now from real probes and print it as JSON;\nnothing is sent",
    args = "one",
    options = context.pid_options,
    help = context.pid_help,
}

function M.run(ctx)
    local pid, err = context.prepare(ctx)
    if not pid then return context.fail(err) end
    local p, problems = context.open(ctx, ctx.args[1])
    if not p then return context.fail(table.concat(problems, "\n")) end
    local body
    body, problems = context.build_once(ctx, p, pid)
    p:close()
    if not body then
        for _, e in ipairs(problems) do io.stderr:write("phonehome: ", p.name, ": ", e, "\n") end
        return 1
    end
    io.stdout:write(body, "\n")
    return 0
end

return M
