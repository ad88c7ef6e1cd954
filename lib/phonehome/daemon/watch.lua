-- Watching the scripts directory: events on its entries (the directory, not the
-- files, since editors and Kubernetes replace files by rename), editor temporaries
-- ignored, bursts gathered into one call after a quiet moment.
local core = require("phonehome.core")
local log = require("phonehome.base.log")

local M = {}

M.DEBOUNCE_MS = 150

-- The product a directory entry is the script of, or nil for anything else: editor
-- temporaries (.x.swp, x~, .#x, 4913, x.lua.tmp) are not scripts.
function M.product_of(name)
    return name and name:match("^([%w_%-]+)%.lua$")
end

-- start(dir, changed) calls changed(names) with the set of products whose scripts
-- changed, or changed(nil) when the whole directory must be read again (the watch
-- failed). Returns a handle with :close().
function M.start(dir, changed)
    local pending, timer = {}, nil
    local everything = false
    local function fire()
        timer = nil
        local names = not everything and pending or nil
        pending, everything = {}, false
        changed(names)
    end
    local function event(name, kind)
        if name == nil then
            log.warn({ msg = "watching the scripts failed; reading the directory again", dir = dir,
                       error = kind })
            everything = true
        else
            local product = M.product_of(name)
            if not product then return end
            pending[product] = true
        end
        if timer then timer:close() end
        timer = core.timer(M.DEBOUNCE_MS, fire)
    end
    local handle, err = core.watch(dir, event)
    if not handle then
        log.warn({ msg = "cannot watch the scripts; SIGHUP reloads them", dir = dir, error = err })
    end
    return {
        close = function()
            if timer then timer:close() end
            if handle then handle:close() end
        end,
    }
end

return M
