-- JSON encoding that keeps integers exact and objects in a declared (or sorted) order.
-- Decoding is lua-cjson's; Debian's cjson 2.1.0 cannot encode as reports need.
local M = {}

local array_mt = { __name = "phonehome.json.array" }

-- Marks a table to be encoded as an array, so that an empty one is [] and not {}.
function M.array(t)
    return setmetatable(t or {}, array_mt)
end

function M.is_array(t)
    return getmetatable(t) == array_mt
end

local escapes = {
    ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
    ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_char(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
end

function M.string(s)
    return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end

-- The shortest decimal form that reads back as the same double; integral floats keep
-- a ".0" so that their type survives a round trip.
function M.number(n)
    if math.type(n) == "integer" then
        return string.format("%d", n)
    end
    if n ~= n or n == math.huge or n == -math.huge then
        error("cannot encode " .. tostring(n) .. " in JSON", 2)
    end
    local s
    for digits = 15, 17 do
        s = string.format("%." .. digits .. "g", n)
        if tonumber(s) == n then break end
    end
    if not s:find("[%.eEn]") then s = s .. ".0" end
    return s
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do
        if type(k) ~= "string" then
            error("cannot encode a table with a " .. type(k) .. " key as a JSON object", 0)
        end
        keys[#keys + 1] = k
    end
    table.sort(keys)
    return keys
end

local function is_sequence(t)
    local n = #t
    if n == 0 then return false end
    local count = 0
    for _ in pairs(t) do count = count + 1 end
    return count == n
end

local encode_value

-- Plain data without a declaration: arrays are sequences (or marked with json.array),
-- objects have their keys sorted.
local function encode_plain(v, out, depth)
    local tv = type(v)
    if v == nil or v == M.null then
        out[#out + 1] = "null"
    elseif tv == "boolean" then
        out[#out + 1] = v and "true" or "false"
    elseif tv == "number" then
        out[#out + 1] = M.number(v)
    elseif tv == "string" then
        out[#out + 1] = M.string(v)
    elseif tv == "table" then
        if depth > 64 then error("cannot encode tables nested deeper than 64", 0) end
        if M.is_array(v) or is_sequence(v) then
            out[#out + 1] = "["
            for i = 1, #v do
                if i > 1 then out[#out + 1] = "," end
                encode_plain(v[i], out, depth + 1)
            end
            out[#out + 1] = "]"
        else
            out[#out + 1] = "{"
            for i, k in ipairs(sorted_keys(v)) do
                if i > 1 then out[#out + 1] = "," end
                out[#out + 1] = M.string(k)
                out[#out + 1] = ":"
                encode_plain(v[k], out, depth + 1)
            end
            out[#out + 1] = "}"
        end
    else
        error("cannot encode a " .. tv .. " in JSON", 0)
    end
end

-- A value described by a field declaration (type, fields, items, values): objects in
-- declaration order, or sorted when canonical.
encode_value = function(v, decl, canonical, out)
    local t = decl.type
    if v == nil then
        out[#out + 1] = "null"
    elseif t == "object" then
        out[#out + 1] = "{"
        local fields, first = decl.fields, true
        if canonical then
            fields = {}
            for i, f in ipairs(decl.fields) do fields[i] = f end
            table.sort(fields, function(a, b) return a.name < b.name end)
        end
        for _, f in ipairs(fields) do
            if not first then out[#out + 1] = "," end
            first = false
            out[#out + 1] = M.string(f.name)
            out[#out + 1] = ":"
            encode_value(v[f.name], f, canonical, out)
        end
        out[#out + 1] = "}"
    elseif t == "array" then
        out[#out + 1] = "["
        for i = 1, #v do
            if i > 1 then out[#out + 1] = "," end
            encode_value(v[i], decl.items, canonical, out)
        end
        out[#out + 1] = "]"
    elseif t == "map" then
        out[#out + 1] = "{"
        for i, k in ipairs(sorted_keys(v)) do
            if i > 1 then out[#out + 1] = "," end
            out[#out + 1] = M.string(k)
            out[#out + 1] = ":"
            encode_value(v[k], decl.values, canonical, out)
        end
        out[#out + 1] = "}"
    else
        encode_plain(v, out, 0)
    end
end

-- encode(value [, decl [, canonical]]): JSON text of value, compact.
function M.encode(v, decl, canonical)
    local out = {}
    if decl then
        encode_value(v, decl, canonical, out)
    else
        encode_plain(v, out, 0)
    end
    return table.concat(out)
end

-- Sentinel for an explicit null in plain data.
M.null = setmetatable({}, { __name = "phonehome.json.null",
                            __tostring = function() return "null" end })

-- A copy of decoded data without json.null: null object members become absent, as the
-- schema reads them (plain data crosses into a sandbox, the sentinel would not).
function M.without_nulls(v)
    if type(v) ~= "table" then return v end
    local out = {}
    for k, x in pairs(v) do
        if x ~= M.null then out[k] = M.without_nulls(x) end
    end
    return out
end

-- cjson 2.1.0 decodes every number as a float: integral ones within 2^53 are made
-- integers again (so 12 stays 12), and cjson's null becomes json.null.
local function integers(v, cnull)
    if type(v) == "table" then
        for k, x in pairs(v) do v[k] = integers(x, cnull) end
    elseif math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
        return math.tointeger(v)
    elseif v == cnull then
        return M.null
    end
    return v
end

-- Decoding is cjson's, loaded on first use (the sandboxes never decode).
function M.decode(text)
    local cjson = require("cjson.safe")
    local v, err = cjson.decode(text)
    if v == nil and err then return nil, err end
    return integers(v, cjson.null)
end

return M
