-- Watching the scripts directory: events on its entries (the directory, not the
-- files, since editors and Kubernetes replace files by rename), editor temporaries
-- ignored, bursts gathered into one call after a quiet moment.
local core = require("phonehome.core")
local log = require("phonehome.base.log")

local M = {}

M.DEBOUNCE_MS = 150
M.RETRY_MS, M.MAX_RETRY_MS = 100, 1000   -- polls for a directory gone, backing off to 1 s

-- The product a directory entry is the script of, or nil for anything else: editor
-- temporaries (.x.swp, x~, .#x, 4913, x.lua.tmp) are not scripts.
function M.product_of(name)
    return name and name:match("^([%w_%-]+)%.lua$")
end

-- start(dir, changed) calls changed(names) with the set of products whose scripts
-- changed, or changed(nil) when the whole directory must be read again: the watch failed,
-- or the directory was removed or replaced; it is watched again once it exists (polled
-- for, every second at most), then read again. Returns a handle with :close().
function M.start(dir, changed)
    local pending, timer = {}, nil
    local everything = false
    local handle, retry
    local function fire()
        timer = nil
        local names = not everything and pending or nil
        pending, everything = {}, false
        changed(names)
    end
    local function later()
        if timer then timer:close() end
        timer = core.timer(M.DEBOUNCE_MS, fire)
    end
    local event
    -- watches dir from now on; when it cannot yet, tries again after wait ms
    local function watch(wait)
        retry = nil
        local err
        handle, err = core.watch(dir, event)
        if handle then return true end
        retry = core.timer(wait, function()
            if watch(math.min(wait * 2, M.MAX_RETRY_MS)) then
                log.info({ msg = "watching the scripts directory again", dir = dir })
                everything = true
                later()
            end
        end)
        return false, err
    end
    event = function(name, kind)
        if name == nil then
            log.warn({ msg = "the watch on the scripts directory ended; watching it again once "
                .. "the directory exists", dir = dir, error = kind })
            handle:close()
            if watch(M.RETRY_MS) then
                log.info({ msg = "watching the scripts directory again", dir = dir })
            end
            everything = true
        else
            local product = M.product_of(name)
            if not product then return end
            pending[product] = true
        end
        later()
    end
    local ok, err = watch(M.RETRY_MS)
    if not ok then
        log.warn({ msg = "cannot watch the scripts yet; trying again until it can (SIGHUP "
            .. "reloads them meanwhile)", dir = dir, error = err })
    end
    return {
        close = function()
            if timer then timer:close() end
            if retry then retry:close() end
            if handle then handle:close() end
        end,
    }
end

return M
