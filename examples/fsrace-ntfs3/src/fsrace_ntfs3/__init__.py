"""ntfs3 (fs/ntfs3 in Linux 6.12) as an fsrace protocol: its fallocate modes in
`file`, its locking, as shipped and with a fix, in `protocols`."""
