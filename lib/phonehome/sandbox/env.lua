-- The environment a product script runs in: an allow-list of globals, a `require` that
-- gives read-only views of the script library, and an error for any other name, read
-- or written.
local library = require("phonehome")

local M = {}

local requirable = {}
for _, name in ipairs(library.script_modules) do requirable[name] = true end

local function copy(t)
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    return c
end

-- new() -> a fresh environment for one script.
function M.new()
    local env = {
        assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
        pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
        type = type, xpcall = xpcall, rawequal = rawequal, rawget = rawget, rawlen = rawlen,
        rawset = rawset, setmetatable = setmetatable, getmetatable = getmetatable,
        _VERSION = _VERSION,
        string = copy(string), table = copy(table), math = copy(math), utf8 = copy(utf8),
        coroutine = copy(coroutine),
        os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime },
    }
    env.string.dump = nil
    env.load = function(chunk, name, mode, e)
        if mode ~= nil and mode ~= "t" then error("only text chunks may be loaded", 2) end
        return load(chunk, name, "t", e or env)
    end
    -- read-only views: a script that could replace json.encode could send what its
    -- declarations never allowed
    local views = {}
    env.require = function(name)
        if not requirable[name] then error("module '" .. tostring(name) .. "' is not available "
            .. "to scripts", 2) end
        views[name] = views[name] or setmetatable({}, {
            __index = require(name), __metatable = false,
            __newindex = function(_, k)
                error("module " .. name .. " is read-only (" .. tostring(k) .. ")", 2)
            end,
        })
        return views[name]
    end
    env._G = env
    return setmetatable(env, {
        __index = function(_, k) error("undeclared global '" .. tostring(k) .. "'", 2) end,
        __newindex = function(_, k)
            error("assignment to undeclared global '" .. tostring(k) .. "'", 2)
        end,
    })
end

return M
