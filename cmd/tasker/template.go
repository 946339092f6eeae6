package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/taskerops/tasker/orchestration"
	"github.com/taskerops/tasker/orchestration/template"
)

func newTemplateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "template",
		Short: "Validate, convert and register TaskTemplates without Kubernetes",
		Long: `Work with TaskTemplate manifests outside Kubernetes: check them offline (validate),
convert classic tasker YAML templates (convert), or register them in the database
(apply). -f takes files, "-" for standard input, or directories (their *.yaml,
*.yml and *.json files, not recursively). Documents of other kinds are skipped.`,
	}
	cmd.AddCommand(newTemplateValidateCommand(), newTemplateApplyCommand(), newTemplateConvertCommand())
	return cmd
}

// addFilenameFlag adds the required -f/--filename flag.
func addFilenameFlag(cmd *cobra.Command, files *[]string, usage string) {
	cmd.Flags().StringSliceVarP(files, "filename", "f", nil, usage)
	_ = cmd.MarkFlagRequired("filename") // the flag was just defined
}

func newTemplateValidateCommand() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "validate -f FILE...",
		Short: "Check TaskTemplate manifests offline",
		Long: `Apply the defaults to every TaskTemplate in the files and validate it as the operator
would, offline. Prints "ok  FILE NS/NAME@VERSION (N steps)" or "FILE: spec.FIELD: MESSAGE".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := loadTemplateFiles(cmd, files, true)
			return err
		},
	}
	addFilenameFlag(cmd, &files, `TaskTemplate manifests: files, "-" for stdin, or directories`)
	return cmd
}

func newTemplateApplyCommand() *cobra.Command {
	var files []string
	var db databaseOptions
	cmd := &cobra.Command{
		Use:   "apply -f FILE... --database-url URL",
		Short: "Register TaskTemplates in the database without Kubernetes",
		Long: `Validate every TaskTemplate in the files (nothing is registered if one is invalid),
then register each with owner "cli". The database is not migrated: run "tasker migrate" first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := db.validate(); err != nil {
				return err
			}
			templates, err := loadTemplateFiles(cmd, files, false)
			if err != nil {
				return fmt.Errorf("%w; nothing was applied", err)
			}
			if len(templates) == 0 {
				return errors.New("the files hold no TaskTemplate: nothing to apply")
			}
			return applyTemplateFiles(cmd.Context(), cmd.OutOrStdout(), db.url, templates)
		},
	}
	addFilenameFlag(cmd, &files, `TaskTemplate manifests: files, "-" for stdin, or directories`)
	db.addFlags(cmd.Flags())
	return cmd
}

func newTemplateConvertCommand() *cobra.Command {
	var files []string
	var output string
	cmd := &cobra.Command{
		Use:   "convert -f CLASSIC.yaml... [-o OUT.yaml]",
		Short: "Convert classic tasker YAML templates into TaskTemplate manifests",
		Long: `Convert classic tasker YAML templates (name, namespace_name, steps[].handler.callable,
dependencies, retry, ...) into TaskTemplate manifests. Unknown fields are errors. An
invalid result is still written, to be fixed by hand, but the command fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTemplateConvert(cmd, files, output)
		},
	}
	addFilenameFlag(cmd, &files, `classic templates: files, "-" for stdin, or directories`)
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the manifests to this file instead of standard output")
	return cmd
}

// manifestSource is the content of one file named with -f.
type manifestSource struct {
	name string // the path, or "<stdin>" for "-"
	data []byte
}

// readManifestSources reads the files, "-" as standard input and each
// directory as its manifest files in name order.
func readManifestSources(cmd *cobra.Command, paths []string) ([]manifestSource, error) {
	var sources []manifestSource
	for _, path := range paths {
		if path == "-" {
			data, err := io.ReadAll(cmd.InOrStdin())
			if err != nil {
				return nil, fmt.Errorf("reading standard input: %w", err)
			}
			sources = append(sources, manifestSource{name: "<stdin>", data: data})
			continue
		}
		files, err := manifestFiles(path)
		if err != nil {
			return nil, err
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, err
			}
			sources = append(sources, manifestSource{name: file, data: data})
		}
	}
	return sources, nil
}

// manifestFiles returns path itself when it is a file, and its *.yaml, *.yml
// and *.json files when it is a directory.
func manifestFiles(path string) ([]string, error) {
	if info, err := os.Stat(path); err != nil || !info.IsDir() {
		return []string{path}, err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, entry := range entries {
		if !entry.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, filepath.Ext(entry.Name())) {
			files = append(files, filepath.Join(path, entry.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.yaml, *.yml or *.json files", path)
	}
	return files, nil
}

// loadedTemplate is a valid template and the file it came from.
type loadedTemplate struct {
	file string
	def  template.Definition
}

// loadTemplateFiles reads and validates every TaskTemplate of the files. It
// prints each problem and, when showValid is set, an "ok" line per valid
// template. It returns the valid templates, and an error when any was not.
func loadTemplateFiles(cmd *cobra.Command, paths []string, showValid bool) ([]loadedTemplate, error) {
	sources, err := readManifestSources(cmd, paths)
	if err != nil {
		return nil, err
	}
	out := cmd.OutOrStdout()
	var valid []loadedTemplate
	invalid := 0
	for _, src := range sources {
		manifests, err := template.ParseManifests(src.data)
		if err != nil {
			for line := range strings.SplitSeq(err.Error(), "\n") { // one line per document
				invalid++
				fmt.Fprintf(out, "%s: %s\n", src.name, line)
			}
		} else if len(manifests) == 0 && showValid {
			fmt.Fprintf(out, "skip  %s (no TaskTemplate)\n", src.name)
		}
		for _, m := range manifests {
			def := m.Definition()
			if verr, isInvalid := errors.AsType[*template.ValidationError](def.Validate()); isInvalid {
				invalid++
				printValidationProblems(out, src.name, verr)
				continue
			}
			if showValid {
				fmt.Fprintf(out, "ok  %s %s (%d steps)\n", src.name, definitionKey(def), len(def.Steps))
			}
			valid = append(valid, loadedTemplate{file: src.name, def: def})
		}
	}
	if invalid > 0 {
		return valid, fmt.Errorf("%d invalid TaskTemplate document(s)", invalid)
	}
	return valid, nil
}

// applyTemplateFiles registers the templates and prints what happened to each.
func applyTemplateFiles(ctx context.Context, out io.Writer, url string, templates []loadedTemplate) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to the database: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("connecting to the database: %w", err)
	}
	store := orchestration.NewTemplateStore(pool)
	failed := 0
	for _, t := range templates {
		result, err := store.Register(ctx, t.def, "cli") // the owner of what this command registers
		var conflict *orchestration.TemplateConflictError
		switch {
		case isSchemaMissing(err):
			return fmt.Errorf("the database has no tasker schema (%w): run tasker migrate first", err)
		case errors.As(err, &conflict):
			failed++
			fmt.Fprintf(out, "conflict  %s %s: already registered by %q with a different definition; give this "+
				"definition a new version, or change it where %[3]q manages it\n", t.file, definitionKey(t.def), conflict.Owner)
		case err != nil:
			failed++
			fmt.Fprintf(out, "error  %s %s: %v\n", t.file, definitionKey(t.def), err)
		default:
			outcome := map[bool]string{true: "updated", false: "unchanged"}[result.Changed]
			if result.Created {
				outcome = "created"
			}
			fmt.Fprintf(out, "%s  %s %s\n", outcome, t.file, definitionKey(t.def))
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d template(s) not applied", failed, len(templates))
	}
	return nil
}

// isSchemaMissing reports whether err says that tasker's tables are absent.
func isSchemaMissing(err error) bool {
	var pgErr *pgconn.PgError // undefined_table, invalid_schema_name, undefined_function:
	return errors.As(err, &pgErr) && slices.Contains([]string{"42P01", "3F000", "42883"}, pgErr.Code)
}

// runTemplateConvert converts the classic templates of the files and writes the
// manifests, separated by "---", to output or standard output.
func runTemplateConvert(cmd *cobra.Command, paths []string, output string) error {
	sources, err := readManifestSources(cmd, paths)
	if err != nil {
		return err
	}
	var docs []string
	invalid := 0
	for _, src := range sources {
		m, err := template.ConvertClassic(src.data)
		if verr, isInvalid := errors.AsType[*template.ValidationError](err); isInvalid {
			invalid++
			printValidationProblems(cmd.ErrOrStderr(), src.name, verr)
		} else if err != nil {
			return fmt.Errorf("%s: %w", src.name, err)
		}
		manifest, err := m.YAML()
		if err != nil {
			return fmt.Errorf("%s: %w", src.name, err)
		}
		docs = append(docs, fmt.Sprintf("# Converted from %s by tasker template convert.\n%s", src.name, manifest))
	}
	text := strings.Join(docs, "---\n")
	if output == "" || output == "-" {
		_, err = io.WriteString(cmd.OutOrStdout(), text)
	} else {
		err = os.WriteFile(output, []byte(text), 0o644) //nolint:gosec // manifests are not secret
	}
	if err != nil {
		return fmt.Errorf("writing the manifests: %w", err)
	}
	if invalid > 0 {
		return fmt.Errorf("%d converted template(s) are invalid: fix them before applying", invalid)
	}
	return nil
}

// printValidationProblems prints each problem as "FILE: spec.FIELD: MESSAGE".
func printValidationProblems(out io.Writer, file string, verr *template.ValidationError) {
	for _, p := range verr.Problems {
		fmt.Fprintf(out, "%s: spec.%s: %s\n", file, p.Field, p.Message)
	}
}

// definitionKey renders NAMESPACE/NAME@VERSION.
func definitionKey(def template.Definition) string {
	return def.NamespaceName + "/" + def.Name + "@" + def.Version
}
