package pgcluster

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// account is the OS identity that runs initdb and postgres. PostgreSQL refuses
// to run as root, so a root process hands the server to an unprivileged user;
// any other process runs the server as itself (credential nil).
type account struct {
	// name is the user's login name, for error messages.
	name string
	// credential switches the child to the user; nil runs it as this process.
	credential *syscall.Credential
}

// lookupAccount returns the account to run the server as: runAs when this
// process is root, this process's own identity otherwise.
func lookupAccount(runAs string) (account, error) {
	if os.Geteuid() != 0 {
		return account{name: "self"}, nil
	}
	u, err := user.Lookup(runAs)
	if err != nil {
		return account{}, fmt.Errorf("pgcluster: running as root, PostgreSQL needs an unprivileged user: %w", err)
	}
	uid, err := parseID(u.Uid)
	if err != nil {
		return account{}, err
	}
	gid, err := parseID(u.Gid)
	if err != nil {
		return account{}, err
	}
	groups, err := supplementaryGroups(u)
	if err != nil {
		return account{}, err
	}
	cred := &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}
	return account{name: runAs, credential: cred}, nil
}

// supplementaryGroups returns the numeric ids of u's groups.
func supplementaryGroups(u *user.User) ([]uint32, error) {
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("pgcluster: groups of user %s: %w", u.Username, err)
	}
	groups := make([]uint32, 0, len(ids))
	for _, id := range ids {
		gid, err := parseID(id)
		if err != nil {
			return nil, err
		}
		groups = append(groups, gid)
	}
	return groups, nil
}

// parseID parses a numeric user or group id.
func parseID(id string) (uint32, error) {
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("pgcluster: non-numeric user or group id %q: %w", id, err)
	}
	return uint32(n), nil
}

// procAttr returns the process attributes of every child the cluster starts:
// its own process group (a terminal's Ctrl-C reaches only this process, which
// then shuts the server down in order), killed when this process dies, and
// running as the account.
func (a account) procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: a.credential,
	}
}

// own gives the account ownership of paths; nothing to do when the server
// runs as this process.
func (a account) own(paths ...string) error {
	if a.credential == nil {
		return nil
	}
	for _, path := range paths {
		if err := os.Chown(path, int(a.credential.Uid), int(a.credential.Gid)); err != nil {
			return fmt.Errorf("pgcluster: giving %s to user %s: %w", path, a.name, err)
		}
	}
	return nil
}

// checkReach returns an error when the account cannot search every directory
// on the path to dir, an absolute path. (A parent made by t.TempDir in a root
// process is such a case; initdb would fail with a bare "permission denied".)
// ACLs are not considered.
func (a account) checkReach(dir string) error {
	if a.credential == nil {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		if !a.canSearch(info) {
			return fmt.Errorf("pgcluster: user %s, which runs the server, cannot enter %s (on the way to %s); "+
				"choose a Config.Dir it can reach", a.name, d, dir)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// canSearch reports whether the account may search the directory described by
// info, by its owner, group and other permission bits.
func (a account) canSearch(info os.FileInfo) bool {
	perm := info.Mode().Perm()
	st, ok := info.Sys().(*syscall.Stat_t)
	switch {
	case perm&0o001 != 0 || !ok:
		return true
	case st.Uid == a.credential.Uid:
		return perm&0o100 != 0
	case st.Gid == a.credential.Gid || slices.Contains(a.credential.Groups, st.Gid):
		return perm&0o010 != 0
	}
	return false
}
