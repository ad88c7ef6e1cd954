-- Field declarations: their normalisation, and the check of a value against them.
-- The same check guards a report before it leaves and a report as it is received.
local json = require("phonehome.json")

local M = {}

M.types = { string = true, int = true, number = true, bool = true, scalar = true,
            object = true, array = true, map = true }

local field_keys = { name = true, type = true, description = true, unit = true, null = true,
                     value = true, setting = true, fields = true, items = true, values = true,
                     line = true, source = true, sources = true, fallback = true }
-- line: set by the loader, the line of the value function; source(s): the sources its
-- value function reads; fallback: its value when that function fails

local function describe(v)
    if type(v) == "string" then
        if #v > 40 then v = v:sub(1, 37) .. "..." end
        return string.format("string %q", v)
    elseif type(v) == "number" then
        return (math.type(v) == "float" and "number " or "integer ") .. tostring(v)
    end
    return type(v)
end
M.describe = describe

-- Reports each key of t that allowed (a set) lacks, at path, or at path.KEY when keyed
-- (so that the key's own line is found).
function M.unknown_keys(t, allowed, problem, path, keyed)
    for k in pairs(t) do
        if not allowed[k] then
            local key = tostring(k)
            local at = path
            if keyed then at = path == "" and key or (path .. "." .. key) end
            problem(at, "unknown key '" .. key .. "'")
        end
    end
end

-- Normalises one declaration in place. problem(path, message) reports what is wrong;
-- inner is true for the item or value declaration of an array or map (no name needed).
function M.declare(decl, path, problem, inner)
    if type(decl) == "string" and inner then decl = { type = decl } end
    if type(decl) ~= "table" then
        problem(path, "a field must be a table, got " .. type(decl))
        return nil
    end
    M.unknown_keys(decl, field_keys, problem, path)
    if not inner then
        if type(decl.name) ~= "string" or not decl.name:match("^[%w_%$%-%.:/]+$") then
            problem(path, "a field needs a name (letters, digits, _ - . : / $)")
        end
        if type(decl.description) ~= "string" or decl.description == "" then
            problem(path, "field has no description")
        end
    end
    if not M.types[decl.type] then
        problem(path, "unknown type " .. describe(decl.type)
            .. " (string, int, number, bool, scalar, object, array, map)")
    end
    if decl.unit ~= nil and type(decl.unit) ~= "string" then
        problem(path, "unit must be a string")
    end
    if decl.null ~= nil and type(decl.null) ~= "boolean" then
        problem(path, "null must be a boolean")
    end
    if decl.value ~= nil and decl.setting ~= nil then
        problem(path, "a field takes its value from 'value' or 'setting', not both")
    end
    if decl.type == "object" then
        if decl.fields == nil and decl.value == nil and decl.setting == nil then
            problem(path, "an object needs 'fields'")
        elseif decl.fields ~= nil then
            M.declare_list(decl.fields, path, problem)
        end
    elseif decl.fields ~= nil then
        problem(path, "only an object has 'fields'")
    end
    for _, k in ipairs({ "items", "values" }) do
        local want = (k == "items") and "array" or "map"
        if decl.type == want then
            if decl[k] == nil then
                problem(path, "an " .. want .. " needs '" .. k .. "' (the type of its elements)")
            else
                decl[k] = M.declare(decl[k], path .. (k == "items" and "[]" or "[*]"), problem,
                                    true)
            end
        elseif decl[k] ~= nil then
            problem(path, "only a" .. (want == "array" and "n " or " ") .. want
                .. " has '" .. k .. "'")
        end
    end
    return decl
end

-- Normalises a list of declarations; names must be unique within it.
function M.declare_list(list, path, problem)
    if type(list) ~= "table" then
        problem(path, "fields must be a list of field tables")
        return
    end
    local seen = {}
    for i, f in ipairs(list) do
        local name = type(f) == "table" and f.name or ("#" .. i)
        local p = path == "" and tostring(name) or (path .. "." .. tostring(name))
        if seen[name] then problem(p, "field declared twice") end
        seen[name] = true
        list[i] = M.declare(f, p, problem, false)
    end
end

local function is_list(v)
    local n = 0
    for k in pairs(v) do
        if math.type(k) ~= "integer" or k < 1 then return false end
        n = n + 1
    end
    return n == #v
end

-- A map key as a reason shows it: quoted, control characters escaped, and every byte
-- past ASCII too when the key is not UTF-8 (the reason itself must be).
local function key_text(k)
    local bytes = utf8.len(k) and '[%c"\\]' or '[%c"\\\128-\255]'
    return '"' .. k:gsub(bytes, function(c) return string.format("\\x%02x", c:byte()) end)
        .. '"'
end

local check

local checkers = {
    string = function(v)
        if type(v) ~= "string" then return nil end
        if not utf8.len(v) then return nil, "not valid UTF-8" end
        return v
    end,
    int = function(v)
        if math.type(v) == "integer" then return v end
        if math.type(v) == "float" and v == math.floor(v) then return math.tointeger(v) end
        return nil
    end,
    number = function(v)
        if type(v) ~= "number" then return nil end
        if v ~= v or v == math.huge or v == -math.huge then return nil, "not a finite number" end
        return v
    end,
    bool = function(v)
        if type(v) == "boolean" then return v end
        return nil
    end,
}
checkers.scalar = function(v)
    local t = type(v)
    if t == "number" then return checkers.number(v) end
    if t == "string" then return checkers.string(v) end
    if t == "boolean" then return v end
    return nil
end

-- An object or a map is a table not marked json.array.
local function is_object(v)
    return type(v) == "table" and not json.is_array(v)
end

checkers.object = function(v, decl, path, fail, strict)
    if not is_object(v) then return nil end
    local out, known = {}, {}
    for _, f in ipairs(decl.fields or {}) do
        known[f.name] = true
        out[f.name] = check(f, v[f.name], path .. "." .. f.name, fail, strict)
    end
    for k in pairs(v) do
        if not known[k] then fail(path .. "." .. tostring(k), "key was not declared") end
    end
    return out
end

-- Strict, an array is only what json.array marks (as a strict decoding marks every
-- array), so that {} is not taken for an empty array.
checkers.array = function(v, decl, path, fail, strict)
    if type(v) ~= "table" or not is_list(v) then return nil end
    if strict and not json.is_array(v) then return nil end
    local out = {}
    for i = 1, #v do out[i] = check(decl.items, v[i], path .. "[" .. i .. "]", fail, strict) end
    return out
end

checkers.map = function(v, decl, path, fail, strict)
    if not is_object(v) then return nil end
    local out = {}
    for k, x in pairs(v) do
        if type(k) ~= "string" then
            fail(path, "map keys must be strings, got " .. describe(k))
        elseif not utf8.len(k) then
            fail(path, "map key " .. key_text(k) .. " is not valid UTF-8")
        else
            out[k] = check(decl.values, x, path .. "[" .. key_text(k) .. "]", fail, strict)
        end
    end
    return out
end

-- What a received value is, in a reason.
local function got(v)
    if v == json.null then return "null" end
    if type(v) == "table" then return json.is_array(v) and "array" or "object" end
    return describe(v)
end

-- check(decl, value, path, fail [, strict]) -> the value normalised (integral floats of
-- an int field become integers, json.null becomes nil); every problem goes to
-- fail(path, message). Absent and json.null are both null. strict: the value was decoded
-- from JSON text, its arrays marked json.array (see collect/routes.lua).
check = function(decl, v, path, fail, strict)
    if v == nil then
        if not decl.null then fail(path, "missing required value (" .. decl.type .. ")") end
        return nil
    end
    if v == json.null then
        if not decl.null then fail(path, "expected " .. decl.type .. ", got null") end
        return nil
    end
    local out, why = checkers[decl.type](v, decl, path, fail, strict)
    if out == nil then
        fail(path, "expected " .. decl.type .. ", got " .. got(v)
            .. (why and (": " .. why) or ""))
    end
    return out
end
M.check = check

-- The type of a declaration in words, for documentation: "array of string", "int or null".
function M.type_name(decl)
    local t = decl.type
    if t == "array" then t = "array of " .. M.type_name(decl.items)
    elseif t == "map" then t = "map of " .. M.type_name(decl.values) end
    if decl.null then t = t .. " or null" end
    return t
end

return M
