-- The data directory: where it is, and the instance ids kept in it.
local core = require("phonehome.core")
local log = require("phonehome.log")
local json = require("phonehome.json")

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

-- Whether the directory can be made and written: true, or nil, message.
function M.writable(dir)
    local ok, err = core.mkdir(dir)
    if not ok then return nil, err end
    local probe = dir .. "/.phonehome-write-test"
    ok, err = core.write_atomic(probe, "", 384)
    if not ok then return nil, err end
    core.remove(probe)
    return true
end

-- The persisted schedule state of a product ({ last_sent, next_due, ... }), or {}.
function M.read_state(dir, name)
    local text = core.readfile(dir .. "/" .. name .. ".state.json")
    local state = text and json.decode(text)
    return type(state) == "table" and state or {}
end

-- Writes it atomically; a failure is logged and the daemon goes on.
function M.write_state(dir, name, state)
    local ok, err = core.write_atomic(dir .. "/" .. name .. ".state.json", json.encode(state) .. "\n", 420)
    if not ok then log.warn({ product = name, msg = "cannot save the schedule state", error = err }) end
    return ok
end

-- The instance id already kept for a product, without making one (for status).
function M.existing_instance_id(dir, desc)
    local text = core.readfile(dir .. "/" .. (desc.identity and desc.identity.file or (desc.name .. ".id")))
    return text and core.uuid_valid(text) and text or nil
end

return M
