-- Your Neovim settings: ~/.config/nvim/init.lua (KOOMPI Terminal edition).
--
-- KOOMPI's settings come first, from the file koompi-configs keeps up to date (it also
-- sets up LazyVim on the first start when there is a network); whatever you write below
-- runs after it, so your settings win and updates never undo them.
-- Plugins of your own: one file each in ~/.config/nvim/lua/plugins/ (LazyVim's way).
-- To stay without LazyVim, remove the -- from the next line:
-- vim.g.koompi_lazyvim = false
dofile("/usr/share/koompi/configs/neovim/init.lua")

-- Your own settings go below this line. Examples (remove the -- to use one):
--
--   vim.opt.relativenumber = true
--   vim.keymap.set("n", "<leader>z", "<cmd>ZenMode<cr>", { desc = "Zen mode" })
