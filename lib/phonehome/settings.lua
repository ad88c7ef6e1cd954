-- Settings of products: --set PRODUCT.KEY=VALUE and --config FILE, typed by each
-- product's declarations. --set wins over the file.
local json = require("phonehome.json")
local schema = require("phonehome.schema")

local M = {}

local bools = { ["true"] = true, yes = true, on = true, ["1"] = true,
                ["false"] = false, no = false, off = false, ["0"] = false }

-- Turns the text of a --set value into the declared type, or nil, reason.
function M.convert(stype, text)
    if stype == "string" then return text end
    if stype == "int" then
        local n = text:match("^%s*[-+]?%d+%s*$") and math.tointeger(tonumber(text))
        if n then return n end
        return nil, "expected int, got " .. string.format("%q", text)
    end
    if stype == "number" then
        local n = tonumber(text)
        if n and n == n and n ~= math.huge and n ~= -math.huge then return n end
        return nil, "expected number, got " .. string.format("%q", text)
    end
    if stype == "bool" then
        local b = bools[text:lower()]
        if b ~= nil then return b end
        return nil, "expected bool (true or false), got " .. string.format("%q", text)
    end
    local v, err = json.decode(text)
    if type(v) ~= "table" then
        return nil, "expected " .. stype .. " as JSON, got " .. string.format("%q", text)
            .. (err and (" (" .. err .. ")") or "")
    end
    return v
end

-- parse_set(list) -> { product = { key = text } }, or nil, message.
function M.parse_set(list)
    local out = {}
    for _, item in ipairs(list) do
        local product, key, value = item:match("^([%w_%-]+)%.([^=]+)=(.*)$")
        if not product then
            return nil, "--set " .. item .. ": expected PRODUCT.KEY=VALUE"
        end
        out[product] = out[product] or {}
        out[product][key] = value
    end
    return out
end

-- resolve(desc, from_set, from_config) -> typed settings with defaults, or nil, message.
function M.resolve(desc, from_set, from_config)
    local out = {}
    for _, s in ipairs(desc.settings) do out[s.name] = s.default end
    local by_name = {}
    for _, s in ipairs(desc.settings) do by_name[s.name] = s end
    local function unknown(key, how)
        return nil, string.format("%s: %s has no setting '%s' (see: phonehome docs %s)",
            how, desc.name, key, desc.name)
    end
    for key, v in pairs(from_config or {}) do
        local s = by_name[key]
        if not s then return unknown(key, "--config") end
        local ok = (s.type == "int" and math.type(v) == "integer") or (s.type == "number" and type(v) == "number")
            or (s.type == "bool" and type(v) == "boolean") or (s.type == "string" and type(v) == "string")
            or ((s.type == "array" or s.type == "map") and type(v) == "table")
        if not ok then
            return nil, string.format("--config: setting %s.%s: expected %s, got %s",
                desc.name, key, s.type, schema.describe(v))
        end
        out[key] = v
    end
    for key, text in pairs(from_set or {}) do
        local s = by_name[key]
        if not s then return unknown(key, "--set " .. desc.name .. "." .. key) end
        local v, err = M.convert(s.type, text)
        if v == nil then
            return nil, string.format("--set %s.%s: %s", desc.name, key, err)
        end
        out[key] = v
    end
    return out
end

return M
