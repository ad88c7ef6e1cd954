-- `phonehome check [FILE...]`: loads and validates scripts (every one in --scripts by
-- default), each with one dry build, and that no two declare the same identity file;
-- prints file:line for every problem.
local context = require("phonehome.cmd._context")
local identity = require("phonehome.definition.identity")
local sandbox = require("phonehome.sandbox")

local M = {
    usage = "check [FILE...]",
    summary = "load and validate scripts (all of --scripts by default),\nincluding one dry "
        .. "build; prints file:line for each problem",
    args = "any",
    options = context.pid_options,
    help = context.pid_help,
}

function M.run(ctx)
    local pid, err = context.prepare(ctx)
    if not pid then return context.fail(err) end
    local files = ctx.args
    if #files == 0 then
        for _, n in ipairs(sandbox.names(ctx.scripts)) do
            files[#files + 1] = sandbox.path(ctx.scripts, n)
        end
        if #files == 0 then return context.fail("no scripts in " .. ctx.scripts) end
    end
    local problems_of, defs, paths = {}, {}, {}
    for _, path in ipairs(files) do
        local p, problems = sandbox.open(path)
        if p then
            defs[#defs + 1], paths[p.def] = p.def, path
            local body
            body, problems = context.build_once(ctx, p, pid, true)
            p:close()
            if body then problems = nil end
        end
        problems_of[path] = problems or {}
    end
    for _, pair in ipairs(identity.shared(defs)) do
        local list = problems_of[paths[pair[1]]]
        list[#list + 1] = string.format("%s: identity.file %q is also declared by %s (%s); "
            .. "give each product its own", paths[pair[1]], pair[1].identity.file,
            pair[2].name, paths[pair[2]])
    end
    local bad = 0
    for _, path in ipairs(files) do
        if #problems_of[path] > 0 then
            bad = bad + 1
            for _, e in ipairs(problems_of[path]) do io.stderr:write(e, "\n") end
        else
            io.stdout:write(path, ": ok\n")
        end
    end
    return bad > 0 and 1 or 0
end

return M
