-- The data directory: where it is, and the instance ids kept in it.
local core = require("phonehome.core")
local log = require("phonehome.log")

local M = {}

-- The default: $STATE_DIRECTORY (systemd), /var/lib/phonehome for root, else
-- $XDG_STATE_HOME/phonehome (~/.local/state/phonehome).
function M.default()
    local sd = core.getenv("STATE_DIRECTORY")
    if sd and sd ~= "" then return (sd:match("^[^:]+")) end
    if core.is_root() then return "/var/lib/phonehome" end
    local xdg = core.getenv("XDG_STATE_HOME")
    if not xdg or xdg == "" then xdg = (core.getenv("HOME") or ".") .. "/.local/state" end
    return xdg .. "/phonehome"
end

-- The instance id of a product: read from its file (def.identity.file, else
-- PRODUCT.id), created on first use and replaced, with a warning, if it does not hold a
-- UUID. When the directory cannot be written the id is a fresh one for this run only.
function M.instance_id(dir, desc)
    local file = dir .. "/" .. (desc.identity and desc.identity.file or (desc.name .. ".id"))
    local text = core.readfile(file)
    if text then
        if core.uuid_valid(text) then return text end
        log.warn({ product = desc.name, msg = "instance id file does not hold a UUID; replacing it",
                   file = file })
    end
    local id = core.uuid()
    local ok, err = core.mkdir(dir)
    if ok then ok, err = core.write_atomic(file, id, 420) end
    if not ok then
        log.warn({ product = desc.name, msg = "cannot keep the instance id; using one for this "
            .. "run only",
                   error = err })
    end
    return id
end

return M
