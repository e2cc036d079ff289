-- KOOMPI Terminal edition: Neovim. Copy to ~/.config/nvim/init.lua.
-- Self-contained (no plugin manager), so it works offline in a classroom; add lazy.nvim or
-- LazyVim yourself when you have a network.
--
-- Keybinds (<leader> is Space):
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

-- KOOMPI colours: accent #1e88e5 on #0d1117.
local c = {
    bg = "#0d1117", bg_alt = "#161b22", line = "#30363d", fg = "#c9d1d9", muted = "#8b949e",
    accent = "#1e88e5", green = "#3fb950", yellow = "#d29922", red = "#f85149",
    magenta = "#bc8cff", cyan = "#39c5cf",
}
vim.cmd("highlight clear")
vim.g.colors_name = "koompi"
local hl = function(group, spec) vim.api.nvim_set_hl(0, group, spec) end
hl("Normal", { fg = c.fg, bg = c.bg })
hl("NormalFloat", { fg = c.fg, bg = c.bg_alt })
hl("CursorLine", { bg = c.bg_alt })
hl("LineNr", { fg = c.line })
hl("CursorLineNr", { fg = c.accent, bold = true })
hl("Visual", { bg = "#1f3b5c" })
hl("Search", { fg = c.bg, bg = c.yellow })
hl("StatusLine", { fg = c.bg, bg = c.accent, bold = true })
hl("StatusLineNC", { fg = c.muted, bg = c.bg_alt })
hl("VertSplit", { fg = c.line })
hl("WinSeparator", { fg = c.line })
hl("Pmenu", { fg = c.fg, bg = c.bg_alt })
hl("PmenuSel", { fg = c.bg, bg = c.accent })
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
