-- Durations as products write them: "300s", "5m", "3h", "1d", "250ms", or an integer
-- number of milliseconds; all parse to integer milliseconds.
local M = {}

local units = { ms = 1, s = 1000, m = 60000, h = 3600000, d = 86400000 }

-- parse(v) -> milliseconds, or nil, message.
function M.parse(v)
    if math.type(v) == "integer" then
        if v < 0 then return nil, "negative duration " .. v end
        return v
    end
    if type(v) ~= "string" then
        return nil, "a duration must be a string such as \"5m\" or milliseconds, got " .. type(v)
    end
    local num, unit = v:match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
    local scale = units[unit or ""]
    if not num or not scale then
        return nil, string.format("bad duration %q (use ms, s, m, h or d, e.g. \"300s\")", v)
    end
    return math.floor(tonumber(num) * scale + 0.5)
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
