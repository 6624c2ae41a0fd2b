package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/holdfast/holdfast/internal/store"
	"github.com/holdfast/holdfast/internal/store/snapshot"
	"github.com/holdfast/holdfast/internal/store/storecfg"
)

// storeFlags are the flags of the store operations: the same --store,
// --data-dir and --etcd-* as `holdfast server`.
type storeFlags struct {
	cfg      storecfg.Config
	logLevel string
}

func (f *storeFlags) add(cmd *cobra.Command, withKind bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.cfg.DataDir, "data-dir", defaultDataDir, "data dir of the bolt store (holdfast.db in it)")
	if withKind {
		f.cfg.AddFlags(fs)
	} else {
		f.cfg.Etcd.AddFlags(fs)
	}
	fs.StringVar(&f.logLevel, "log-level", "warn", "debug, info, warn or error")
}

func (f *storeFlags) open(ctx context.Context, cfg storecfg.Config, o storecfg.OpenOptions) (store.Backend, error) {
	o.Logger = newLogger(f.logLevel)
	if !cfg.IsEtcd() {
		// bbolt's file lock goes with its process: no need to wait long
		// for a holdfast that is running (etcd's lock waits for the lease
		// of a killed one to expire).
		o.LockWait = 2 * time.Second
	}
	b, err := cfg.Open(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg, err)
	}
	return b, nil
}

func backupCmd() *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent backup of the store to FILE (bolt: stop holdfast first; etcd: online)",
		Long: `Writes every key of the store, read at one revision, to FILE with a checksum.
A bolt store is read from --data-dir; the control plane holds its file lock, so
stop it first. An etcd store (--store etcd) is backed up while it runs. FILE is
written under a temporary name and renamed once complete.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			b, err := f.open(ctx, f.cfg, storecfg.OpenOptions{MustExist: true})
			if err != nil {
				return err
			}
			defer b.Close()
			res, err := writeFileAtomic(args[0], func(w io.Writer) (snapshot.Result, error) {
				return snapshot.Write(ctx, b, w, f.cfg.String())
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up %d keys (%s) of %s at revision %d, data format %d, to %s\n",
				res.Keys, size(res.Bytes), f.cfg.String(), res.Revision, res.Format, args[0])
			return nil
		},
	}
	f.add(cmd, true)
	return cmd
}

// writeFileAtomic writes path through a temporary file that is fsynced and
// renamed into place only when write succeeded.
func writeFileAtomic(path string, write func(io.Writer) (snapshot.Result, error)) (snapshot.Result, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return snapshot.Result{}, err
	}
	defer os.Remove(tmp.Name())
	res, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		if d, derr := os.Open(filepath.Dir(path)); derr == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return res, err
}

func restoreCmd() *cobra.Command {
	var f storeFlags
	var opts snapshot.Options
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup into an empty store (--force replaces a store's data)",
		Long: `Verifies FILE, then writes its keys into the store named by --store,
--data-dir and --etcd-*, which must be empty unless --force is given (then its
data is deleted first). Holds the store as its only writer: stop holdfast first.
A bolt store's revision jumps past the backup's by --bump-revision, so that
agents never see revisions go backwards; an etcd cluster's revision cannot be
moved, and if it ends below the backup's the command says to restart the agents.
A restore that is interrupted leaves the store marked: holdfast refuses to start
on it until the restore is run again with --force.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			file, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer file.Close()
			if _, _, err := snapshot.Verify(file); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			b, err := f.open(ctx, f.cfg, storecfg.OpenOptions{Exclusive: true})
			if err != nil {
				return err
			}
			defer b.Close()
			opts.Source = args[0]
			res, err := snapshot.Restore(ctx, file, b, opts)
			if err != nil {
				return err
			}
			reportCopy(cmd.OutOrStdout(), "restored", res, args[0]+" (made "+res.Created.Format("2006-01-02 15:04:05 MST")+" from "+res.Source+")", f.cfg.String())
			return nil
		},
	}
	f.add(cmd, true)
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace the data of a store that is not empty")
	cmd.Flags().Int64Var(&opts.BumpRevision, "bump-revision", snapshot.DefaultBumpRevision, "bolt: advance the store's revision this far past the backup's (-1: do not)")
	return cmd
}

func reportCopy(w io.Writer, verb string, res snapshot.Result, from, to string) {
	fmt.Fprintf(w, "%s %d keys (%s) from %s into %s: data format %d, source revision %d, target revision %d\n",
		verb, res.Keys, size(res.Bytes), from, to, res.Format, res.Revision, res.TargetRev)
	if res.Behind {
		fmt.Fprintf(w, "note: the target's revision (%d) is below the source's (%d); restart every holdfast agent once the control plane runs, so that it resyncs its tasks\n", res.TargetRev, res.Revision)
	}
}

func migrateCmd() *cobra.Command {
	var f storeFlags
	var from, to string
	var opts snapshot.Options
	cmd := &cobra.Command{
		Use:   "migrate --from bolt --to etcd",
		Short: "Copy a stopped installation's store into another backend (e.g. a single node onto an etcd cluster)",
		Long: `Copies every key of the --from store, read at one revision, into the --to
store, which must be empty unless --force is given. The bolt store is the one in
--data-dir; the etcd store is named by --etcd-endpoints, --etcd-prefix and the
TLS flags. Stop holdfast first; afterwards start it with the new --store flags.
The source is left as it was.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := f.cfg, f.cfg
			src.Kind, dst.Kind = strings.ToLower(from), strings.ToLower(to)
			for _, c := range []storecfg.Config{src, dst} {
				if err := c.Validate(); err != nil {
					return err
				}
			}
			if src.Kind == dst.Kind {
				return errors.New("--from and --to name the same backend; to copy between two stores of one kind, back up one and restore into the other")
			}
			ctx, cancel := signalContext()
			defer cancel()
			sb, err := f.open(ctx, src, storecfg.OpenOptions{Exclusive: true, MustExist: true})
			if err != nil {
				return err
			}
			defer sb.Close()
			db, err := f.open(ctx, dst, storecfg.OpenOptions{Exclusive: true})
			if err != nil {
				return err
			}
			defer db.Close()
			opts.Source = src.String()
			res, err := snapshot.Copy(ctx, sb, db, opts)
			if err != nil {
				return err
			}
			reportCopy(cmd.OutOrStdout(), "migrated", res, src.String(), dst.String())
			fmt.Fprintf(cmd.OutOrStdout(), "start holdfast server with --store %s", dst.Kind)
			if dst.IsEtcd() {
				fmt.Fprintf(cmd.OutOrStdout(), " --etcd-endpoints %s --etcd-prefix %s", strings.Join(dst.Etcd.Endpoints, ","), dst.Etcd.Prefix)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&from, "from", storecfg.Bolt, "source backend: bolt or etcd")
	cmd.Flags().StringVar(&to, "to", storecfg.Etcd, "target backend: etcd or bolt")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace the data of a target that is not empty")
	cmd.Flags().Int64Var(&opts.BumpRevision, "bump-revision", snapshot.DefaultBumpRevision, "bolt target: advance its revision this far past the source's (-1: do not)")
	return cmd
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
