package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
)

// The rules every command follows, applied to the whole tree once it is
// built, so that a command added later follows them too.

// finishTree gives every command its examples (examples.go) and makes
// every command that only groups subcommands (wallet, jobs, chain, …, the
// root included) refuse an argument that is not one of them: cobra would
// print the help and exit 0, so `gridmind wallet balanse` looked like it
// worked.
func finishTree(cmd *cobra.Command) {
	// cobra sets its default distance only on the root's own lookup.
	cmd.SuggestionsMinimumDistance = 2
	if cmd.Example == "" {
		cmd.Example = examples[cmd.CommandPath()]
	}
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = unknownSubcommand
		cmd.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	}
	for _, c := range cmd.Commands() {
		finishTree(c)
	}
}

// unknownSubcommand refuses any argument of a command that only groups
// subcommands, suggesting the nearest one.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	switch s := cmd.SuggestionsFor(args[0]); len(s) {
	case 0:
		msg += fmt.Sprintf("; its commands are %s", strings.Join(subcommandNames(cmd), ", "))
	case 1:
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	default:
		msg += fmt.Sprintf("; did you mean one of %s?", strings.Join(s, ", "))
	}
	return gridmind.E(gridmind.KindInvalid, "", "%s (see %s --help)", msg, cmd.CommandPath())
}

func subcommandNames(cmd *cobra.Command) []string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return names
}

// flagError is every command's flag error. A negative number is read by
// the flag parser as a cluster of short flags (`wallet send ADDR -5`:
// "unknown shorthand flag: '5' in -5"); say what it is instead.
func flagError(cmd *cobra.Command, err error) error {
	if tok, ok := negativeNumber(err); ok {
		if strings.Contains(cmd.Use, "AMOUNT") {
			_, aerr := gridmind.ParseAmount(tok)
			return gridmind.E(gridmind.KindInvalid, cmd.CommandPath(), "%v", aerr)
		}
		return gridmind.E(gridmind.KindInvalid, cmd.CommandPath(), "%s is a negative number, which %s does not take (a leading '-' starts a flag; see --help)", tok, cmd.CommandPath())
	}
	return gridmind.E(gridmind.KindInvalid, cmd.CommandPath(), "%v (see --help)", err)
}

// negativeNumber finds the token of pflag's "unknown shorthand flag: '5'
// in -5" when it is a negative amount or number ("-5", "-0.5", "-5GRID").
func negativeNumber(err error) (string, bool) {
	const prefix = "unknown shorthand flag: "
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return "", false
	}
	_, tok, ok := strings.Cut(msg, " in ")
	if !ok || !strings.HasPrefix(tok, "-") || len(tok) < 2 || tok[1] < '0' || tok[1] > '9' {
		return "", false
	}
	return tok, true
}
