-- A pid file: the process id of the product's server, read again whenever it is needed,
-- since the server may have restarted since the last time.
local core = require("phonehome.core")

local M = {}

-- read(path) -> pid, or nil, message naming the file.
function M.read(path)
    local text, err = core.readfile(path)
    if not text then return nil, err end
    local pid = math.tointeger(tonumber(text:match("^%s*(%d+)%s*$")))
    if not pid or pid <= 0 then return nil, path .. ": does not hold a process id" end
    return pid
end

return M
