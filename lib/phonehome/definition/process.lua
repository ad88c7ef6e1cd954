-- The process section of a definition: how the product's own process is found when no
-- --pid or --pidfile names it (its executable, its command line), and which of its
-- environment variables and command-line flags a script may read, declared so that
-- `docs` lists them and no other can be read.
local schema = require("phonehome.definition.schema")

local M = {}

local keys = { exe = true, command = true, env = true, flags = true }

local function names(p, key, pattern, what, problem)
    local list = p[key]
    if list == nil then
        p[key] = {}
        return
    end
    if type(list) ~= "table" then
        problem("process." .. key, key .. " must be a list of " .. what)
        p[key] = {}
        return
    end
    for i, name in ipairs(list) do
        if type(name) ~= "string" or not name:match(pattern) then
            problem("process." .. key, key .. "[" .. i .. "] is not a " .. what:gsub("s$", ""))
        end
    end
end

-- check(def, problem): process = { exe = "name", command = "lua pattern", env = { names },
-- flags = { "--name" } }, all optional.
function M.check(def, problem)
    local p = def.process
    if p == nil then
        def.process = { env = {}, flags = {} }
        return
    end
    if type(p) ~= "table" then
        problem("process", "process must be a table (exe, command, env, flags)")
        def.process = { env = {}, flags = {} }
        return
    end
    schema.unknown_keys(p, keys, problem, "process", true)
    for _, k in ipairs({ "exe", "command" }) do
        if p[k] ~= nil and (type(p[k]) ~= "string" or p[k] == "") then
            problem("process." .. k, k .. " must be a non-empty string")
        end
    end
    if type(p.command) == "string" and not pcall(string.find, "", p.command) then
        problem("process.command", "command is not a valid Lua pattern")
    end
    names(p, "env", "^[%a_][%w_]*$", "variable names", problem)
    names(p, "flags", "^%-%-?[%w][%w%-_%.]*$", "flags such as \"--data-dir\"", problem)
end

-- Whether the definition says how to find the product's process by itself.
function M.matches(def)
    return def.process.exe ~= nil or def.process.command ~= nil
end

return M
