-- The data directory and everything kept in it; no other module knows its layout:
--   PRODUCT.id (or the script's identity.file)   the instance id, 0644
--   PRODUCT.state.json                          schedule state, 0644
--   PRODUCT.last.json (or the script's last_report)   the last report built, 0644
--   spool/PRODUCT/SEQUENCE-KEY.json             reports waiting to be sent, 0600
--   reports.db                                  the collector's default database
-- Every file is written atomically (temporary file, fsync, rename).
local core = require("phonehome.core")
local json = require("phonehome.json")
local log = require("phonehome.base.log")

local M = {}

local PUBLIC = 420    -- 0644: what an operator may read
local PRIVATE = 384   -- 0600: report bodies waiting to be sent

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

-- Whether the directory can be made and written: true, or nil, message.
function M.writable(dir)
    local ok, err = core.mkdir(dir)
    if not ok then return nil, err end
    local probe = dir .. "/.phonehome-write-test"
    ok, err = core.write_atomic(probe, "", PRIVATE)
    if not ok then return nil, err end
    core.remove(probe)
    return true
end

local function id_file(dir, def)
    return dir .. "/" .. (def.identity and def.identity.file or (def.name .. ".id"))
end

-- The instance id already kept for a product, without making one (for status).
function M.existing_instance_id(dir, def)
    local text = core.readfile(id_file(dir, def))
    return text and core.uuid_valid(text) and text or nil
end

-- The instance id of a product: read from its file, created on first use and replaced,
-- with a warning, if it does not hold a UUID. When the directory cannot be written the
-- id is a fresh one for this run only.
function M.instance_id(dir, def)
    local file = id_file(dir, def)
    local text = core.readfile(file)
    if text then
        if core.uuid_valid(text) then return text end
        log.warn({ product = def.name, msg = "instance id file does not hold a UUID; replacing it",
                   file = file })
    end
    local id = core.uuid()
    local ok, err = core.mkdir(dir)
    if ok then ok, err = core.write_atomic(file, id, PUBLIC) end
    if not ok then
        log.warn({ product = def.name, msg = "cannot keep the instance id; using one for this "
            .. "run only", error = err })
    end
    return id
end

local function state_file(dir, name)
    return dir .. "/" .. name .. ".state.json"
end

-- The persisted schedule state of a product ({ last_sent, next_due, ... }), or {}.
function M.read_state(dir, name)
    local text = core.readfile(state_file(dir, name))
    local state = text and json.decode(text)
    return type(state) == "table" and state or {}
end

-- Writes it; a failure is logged and the daemon goes on.
function M.write_state(dir, name, state)
    local ok, err = core.write_atomic(state_file(dir, name), json.encode(state) .. "\n", PUBLIC)
    if not ok then
        log.warn({ product = name, msg = "cannot save the schedule state", error = err })
    end
    return ok
end

local function last_file(dir, def)
    return dir .. "/" .. (def.last_report or (def.name .. ".last.json"))
end

-- The last report built for a product (decoded), or nil.
function M.read_last_report(dir, def)
    local text = core.readfile(last_file(dir, def))
    return text and json.decode(text) or nil
end

-- Keeps the last report built, for the operator to read; a failure is logged.
function M.write_last_report(dir, def, body)
    local ok, err = core.write_atomic(last_file(dir, def), body .. "\n", PUBLIC)
    if not ok then
        log.warn({ product = def.name, msg = "cannot write the last report", error = err })
    end
    return ok
end

local function spool_dir(dir, name)
    return dir .. "/spool/" .. name
end

-- The reports spooled for a product, oldest first: { seq, key, file }, bodies unread.
function M.spooled(dir, name)
    local out = {}
    local sdir = spool_dir(dir, name)
    for _, f in ipairs(core.listdir(sdir) or {}) do
        local seq, key = f:match("^(%d+)%-([%w%-]+)%.json$")
        if seq then out[#out + 1] = { seq = tonumber(seq), key = key, file = sdir .. "/" .. f } end
    end
    table.sort(out, function(a, b) return a.seq < b.seq end)
    return out
end

-- Spools a report body: the file it is in, or nil, message.
function M.spool(dir, name, seq, key, body)
    local sdir = spool_dir(dir, name)
    local ok, err = core.mkdir(sdir)
    local file = string.format("%s/%020d-%s.json", sdir, seq, key)
    if ok then ok, err = core.write_atomic(file, body, PRIVATE) end
    if not ok then return nil, err end
    return file
end

-- The collector's database when --db is not given.
function M.reports_db(dir)
    return dir .. "/reports.db"
end

return M
