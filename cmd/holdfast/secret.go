package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// secretFlags are the ways to give the secret access key. A flag's value
// is readable by every local user (ps, /proc/PID/cmdline), so the flag is
// the last resort: a file (--secret-access-key-file, or the file named by
// $HOLDFAST_SECRET_ACCESS_KEY_FILE, as with Docker and systemd secrets) or
// $HOLDFAST_SECRET_ACCESS_KEY (/proc/PID/environ is readable by the same
// user and root only) keep it off the command line.
type secretFlags struct {
	value, file string
}

func (s *secretFlags) add(cmd *cobra.Command, fallback string) {
	cmd.Flags().StringVar(&s.value, "secret-access-key", "",
		"secret access key; every local user can read a flag's value (ps, /proc/PID/cmdline): prefer --secret-access-key-file or $HOLDFAST_SECRET_ACCESS_KEY")
	cmd.Flags().StringVar(&s.file, "secret-access-key-file", "",
		"read the secret access key from this file (its first line; keep it mode 0600); else $HOLDFAST_SECRET_ACCESS_KEY_FILE, else $HOLDFAST_SECRET_ACCESS_KEY"+fallback)
}

// resolve returns the secret from, in order: --secret-access-key-file,
// --secret-access-key (with a warning in log), the file named by
// $HOLDFAST_SECRET_ACCESS_KEY_FILE, $HOLDFAST_SECRET_ACCESS_KEY; "" if none
// is set.
func (s *secretFlags) resolve(log *slog.Logger) (string, error) {
	switch {
	case s.file != "" && s.value != "":
		return "", errors.New("give --secret-access-key-file or --secret-access-key, not both")
	case s.file != "":
		return readSecretFile(s.file)
	case s.value != "":
		log.Warn("the secret access key was given with --secret-access-key: every local user can read it in ps and /proc/PID/cmdline; use --secret-access-key-file or $HOLDFAST_SECRET_ACCESS_KEY")
		return s.value, nil
	}
	if f := os.Getenv("HOLDFAST_SECRET_ACCESS_KEY_FILE"); f != "" {
		return readSecretFile(f)
	}
	return os.Getenv("HOLDFAST_SECRET_ACCESS_KEY"), nil
}

// readSecretFile returns the first line of path, without surrounding
// white space; an empty secret is an error.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("secret access key file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	secret := strings.TrimSpace(line)
	if secret == "" {
		return "", fmt.Errorf("secret access key file %s: its first line is empty", path)
	}
	return secret, nil
}
