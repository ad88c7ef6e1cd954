-- The environment section of a definition: the variables a script reads with
-- ctx.getenv, declared so that `docs` lists them and no other variable can be read.
-- (The opt-out switches' variables are read by phonehome, not by the script.)
local M = {}

-- check(def, problem): environment = { "NAME", ... }, every name a variable's.
function M.check(def, problem)
    local list = def.environment
    if list == nil then
        def.environment = {}
        return
    end
    if type(list) ~= "table" then
        problem("environment", "environment must be a list of variable names")
        def.environment = {}
        return
    end
    for i, name in ipairs(list) do
        if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
            problem("environment", "environment[" .. i .. "] is not a variable name")
        end
    end
end

-- reader(def, getenv) -> getenv for the script: a declared variable's value or nil; an
-- error for any other.
function M.reader(def, getenv)
    local declared = {}
    for _, name in ipairs(def.environment) do declared[name] = true end
    return function(name)
        if not declared[name] then
            error("environment variable " .. string.format("%q", tostring(name))
                .. " is not declared in the script's environment list", 2)
        end
        return getenv(name)
    end
end

return M
