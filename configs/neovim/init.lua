-- KOOMPI Terminal edition: Neovim.
-- Installed by koompi-configs at /usr/share/koompi/configs/neovim/init.lua and updated with
-- it: do not change this file. ~/.config/nvim/init.lua runs it first (dofile) and then your
-- own settings, which win (docs/configs.md).
--
-- LazyVim: on the first start with a network, lazy.nvim is cloned into
-- ~/.local/share/nvim/lazy and sets up LazyVim (in KOOMPI's colours) with your plugins from
-- ~/.config/nvim/lua/plugins/. Without a network, without git, or on a Neovim older than
-- 0.11 (which LazyVim needs), you get KOOMPI's plain settings below and LazyVim is tried
-- again at the next start. To stay with the plain settings, put
-- `vim.g.koompi_lazyvim = false` above the dofile line of your init.lua.
--
-- Keybinds of the plain settings (<leader> is Space; LazyVim shows its own with Space):
--   <leader>w   save            <leader>q   quit
--   <leader>e   file explorer (netrw)
--   <leader>h   clear search highlight
--   <leader>n   toggle line numbers
--   CTRL + h/j/k/l   move between split windows
--   <leader>t   open a terminal below   (Escape twice leaves terminal mode)

vim.g.mapleader = " "
vim.g.maplocalleader = " "

local o = vim.opt
o.number = true
o.relativenumber = false
o.mouse = "a"
o.clipboard = "unnamedplus"
o.expandtab = true
o.shiftwidth = 4
o.tabstop = 4
o.smartindent = true
o.ignorecase = true
o.smartcase = true
o.termguicolors = true
o.cursorline = true
o.signcolumn = "yes"
o.splitright = true
o.splitbelow = true
o.undofile = true
o.scrolloff = 5

local map = vim.keymap.set
map("n", "<leader>w", "<cmd>write<cr>", { desc = "Save" })
map("n", "<leader>q", "<cmd>quit<cr>", { desc = "Quit" })
map("n", "<leader>e", "<cmd>Explore<cr>", { desc = "File explorer" })
map("n", "<leader>h", "<cmd>nohlsearch<cr>", { desc = "Clear search highlight" })
map("n", "<leader>n", function() o.number = not o.number:get() end, { desc = "Toggle numbers" })
map("n", "<leader>t", "<cmd>botright split | resize 12 | terminal<cr>", { desc = "Terminal" })
map("t", "<Esc><Esc>", [[<C-\><C-n>]], { desc = "Leave terminal mode" })
map("n", "<C-h>", "<C-w>h")
map("n", "<C-j>", "<C-w>j")
map("n", "<C-k>", "<C-w>k")
map("n", "<C-l>", "<C-w>l")

-- KOOMPI colours (configs/palette.toml).
local c = {
    -- BEGIN koompi-palette: `cargo xtask configs` writes this block from configs/palette.toml
    background = "#0d1117",
    surface = "#161b22",
    overlay = "#30363d",
    selection = "#1f3b5c",
    text = "#c9d1d9",
    muted = "#8b949e",
    subtle = "#6e7681",
    bright = "#f0f6fc",
    accent = "#1e88e5",
    accent_light = "#64b5f6",
    red = "#f85149",
    green = "#3fb950",
    yellow = "#d29922",
    magenta = "#bc8cff",
    cyan = "#39c5cf",
    orange = "#f0883e",
    bright_red = "#ff7b72",
    bright_green = "#56d364",
    bright_yellow = "#e3b341",
    bright_magenta = "#d2a8ff",
    bright_cyan = "#56d4dd",
    -- END koompi-palette
}

-- The KOOMPI colour scheme: `:colorscheme` cannot find it by name, so it is a function,
-- applied below and given to LazyVim as its colorscheme.
local function koompi_colors()
    vim.cmd("highlight clear")
    vim.g.colors_name = "koompi"
    local hl = function(group, spec) vim.api.nvim_set_hl(0, group, spec) end
    hl("Normal", { fg = c.text, bg = c.background })
    hl("NormalFloat", { fg = c.text, bg = c.surface })
    hl("CursorLine", { bg = c.surface })
    hl("LineNr", { fg = c.overlay })
    hl("CursorLineNr", { fg = c.accent, bold = true })
    hl("Visual", { bg = c.selection })
    hl("Search", { fg = c.background, bg = c.yellow })
    hl("StatusLine", { fg = c.background, bg = c.accent, bold = true })
    hl("StatusLineNC", { fg = c.muted, bg = c.surface })
    hl("VertSplit", { fg = c.overlay })
    hl("WinSeparator", { fg = c.overlay })
    hl("Pmenu", { fg = c.text, bg = c.surface })
    hl("PmenuSel", { fg = c.background, bg = c.accent })
    hl("Comment", { fg = c.muted, italic = true })
    hl("String", { fg = c.green })
    hl("Number", { fg = c.yellow })
    hl("Keyword", { fg = c.accent })
    hl("Statement", { fg = c.accent })
    hl("Function", { fg = c.cyan })
    hl("Type", { fg = c.magenta })
    hl("Constant", { fg = c.yellow })
    hl("Error", { fg = c.red })
    hl("DiagnosticError", { fg = c.red })
    hl("DiagnosticWarn", { fg = c.yellow })
end

koompi_colors()

-- LazyVim, when it can be had (see the top of this file).
local function lazyvim()
    if vim.g.koompi_lazyvim == false then
        return
    end
    if vim.fn.has("nvim-0.11") == 0 then
        return
    end
    local lazypath = vim.fn.stdpath("data") .. "/lazy/lazy.nvim"
    if not (vim.uv or vim.loop).fs_stat(lazypath) then
        if vim.fn.executable("git") == 0 then
            return
        end
        local out = vim.fn.system({
            "git", "clone", "--filter=blob:none", "--branch=stable",
            "https://github.com/folke/lazy.nvim.git", lazypath,
        })
        if vim.v.shell_error ~= 0 then
            vim.fn.delete(lazypath, "rf")
            vim.notify(
                "KOOMPI: LazyVim could not be downloaded (no network?); using KOOMPI's plain "
                    .. "settings. It is tried again at the next start.\n" .. out,
                vim.log.levels.WARN
            )
            return
        end
    end
    vim.opt.rtp:prepend(lazypath)
    local spec = {
        { "LazyVim/LazyVim", import = "lazyvim.plugins", opts = { colorscheme = koompi_colors } },
    }
    -- The user's own plugins, one file each in ~/.config/nvim/lua/plugins/.
    if vim.fn.isdirectory(vim.fn.stdpath("config") .. "/lua/plugins") == 1 then
        table.insert(spec, { import = "plugins" })
    end
    require("lazy").setup({
        spec = spec,
        -- No background update checks: classrooms share slow connections.
        checker = { enabled = false },
        change_detection = { notify = false },
    })
end

lazyvim()
