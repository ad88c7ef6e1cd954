-- Durations as products write them: "300s", "5m", "3h", "1d", "250ms", or an integer
-- number of milliseconds; all parse to integer milliseconds, from 0 to 10 years.
local M = {}

local units = { ms = 1, s = 1000, m = 60000, h = 3600000, d = 86400000 }

M.MAX = 3650 * units.d   -- 10 years: no schedule or timeout is longer

local function shown(v)
    return type(v) == "string" and string.format("%q", v) or tostring(v)
end

-- parse(v [, positive [, key]]) -> milliseconds, or nil, message naming v (and key, the
-- declaration it is for). positive: 0 is refused too.
function M.parse(v, positive, key)
    local of = key and (" for " .. key) or ""
    local ms
    if math.type(v) == "integer" then
        ms = v
    elseif type(v) ~= "string" then
        return nil, "a duration" .. of .. " must be a string such as \"5m\" or milliseconds, got "
            .. (math.type(v) == "float" and ("the number " .. tostring(v)) or type(v))
    else
        local num, unit = v:match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
        local scale = units[unit or ""]
        if not num or not scale then
            return nil, string.format("bad duration %q%s (use ms, s, m, h or d, e.g. \"300s\")",
                v, of)
        end
        -- in floating point first: an integer product could wrap around
        local f = (tonumber(num) + 0.0) * scale + 0.5
        ms = f >= M.MAX + 1 and M.MAX + 1 or math.floor(f)
    end
    if ms < 0 then return nil, "negative duration " .. shown(v) .. of end
    if ms > M.MAX then
        return nil, "duration " .. shown(v) .. of .. " is longer than 10 years (3650d)"
    end
    if positive and ms == 0 then
        return nil, "duration " .. shown(v) .. of .. " must be positive"
    end
    return ms
end

-- format(ms) -> the largest exact unit up to hours, as products write them: "24h",
-- "3h", "5m", "250ms".
function M.format(ms)
    for _, u in ipairs({ "h", "m", "s" }) do
        if ms > 0 and ms % units[u] == 0 then return (ms // units[u]) .. u end
    end
    return ms .. "ms"
end

return M
