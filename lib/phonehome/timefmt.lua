-- Times as reports and logs write them.
local M = {}

-- iso8601(t [, digits]) -> "2023-09-19T14:40:45.972021Z" for epoch seconds t (UTC),
-- with digits (default 6) of fractional seconds.
function M.iso8601(t, digits)
    digits = digits or 6
    local seconds = math.floor(t)
    local frac = math.floor((t - seconds) * 10 ^ digits)
    return os.date("!%Y-%m-%dT%H:%M:%S", seconds)
        .. (digits > 0 and string.format(".%0" .. digits .. "dZ", frac) or "Z")
end

return M
