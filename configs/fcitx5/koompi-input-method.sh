# KOOMPI OS: graphical programs type through fcitx5 (Khmer input, issue 13).
# koompi-configs installs this file as /etc/profile.d/koompi-input-method.sh: login shells
# read it through /etc/profile, and so do display managers before they start a session.
# A value already set (by the user, a desktop or im-config) is kept.
#
# X11 and XWayland programs reach fcitx5 through XIM.
export XMODIFIERS="${XMODIFIERS:-@im=fcitx}"
# Qt programs: fcitx5-qt's module, on X11 and on Wayland (Qt 5 has no text-input-v3).
export QT_IM_MODULE="${QT_IM_MODULE:-fcitx}"
# GTK programs: fcitx5-gtk's module in an X11 session (Openbox). In a Wayland session
# (Hyprland) GTK 3 and 4 talk to fcitx5 through the compositor's text-input-v3, which
# fcitx5's Wayland documentation prefers, so the variable stays unset there. A Wayland
# compositor started from a console login sees XDG_SESSION_TYPE=tty here and gets the
# module, which also works.
if [ "${XDG_SESSION_TYPE:-}" != wayland ]; then
    export GTK_IM_MODULE="${GTK_IM_MODULE:-fcitx}"
fi
