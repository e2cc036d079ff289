# KOOMPI OS: the default ~/.zshrc (copied from /etc/skel to every new user's home).

# History
HISTFILE=~/.zsh_history
HISTSIZE=10000
SAVEHIST=10000
setopt append_history hist_ignore_dups hist_ignore_space share_history

# Completion (zsh-completions adds its functions to fpath itself)
autoload -Uz compinit && compinit
zstyle ':completion:*' menu select

# Emacs-style line editing, as bash does
bindkey -e

# Prompt: user@host dir, red % after a failed command
PROMPT='%F{blue}%n@%m%f %F{cyan}%~%f %(?.%#.%F{red}%#%f) '

# Plugins from the Arch packages zsh-autosuggestions and zsh-syntax-highlighting
# (syntax highlighting must be sourced last)
for plugin in \
    /usr/share/zsh/plugins/zsh-autosuggestions/zsh-autosuggestions.zsh \
    /usr/share/zsh/plugins/zsh-syntax-highlighting/zsh-syntax-highlighting.zsh; do
    [[ -r $plugin ]] && source "$plugin"
done
unset plugin

# The KOOMPI system summary (/etc/fastfetch/config.jsonc) when an interactive login starts
if [[ -o login && -o interactive ]] && (( $+commands[fastfetch] )); then
    fastfetch
fi
