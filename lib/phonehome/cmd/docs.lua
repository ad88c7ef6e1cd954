-- `phonehome docs PRODUCT`: the product's fields, schedule, endpoint, opt-out switches,
-- disclosure and settings as Markdown, rendered from its declarations.
local context = require("phonehome.cmd._context")

local M = {
    usage = "docs PRODUCT",
    summary = "print the product's fields, schedule, endpoint, opt-out\nswitches and "
        .. "disclosure as Markdown",
    args = "one",
    options = {},
    help = "",
}

function M.run(ctx)
    local p, problems = context.open(ctx, ctx.args[1])
    if not p then return context.fail(table.concat(problems, "\n")) end
    io.stdout:write(require("phonehome.definition.markdown").render(p.def))
    p:close()
    return 0
end

return M
