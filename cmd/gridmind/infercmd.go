package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/api"
)

func init() { extraCommands = append(extraCommands, newInferCmd, newServeCmd) }

func newInferCmd(g *globals) *cobra.Command {
	var (
		model       string
		maxTokens   int
		temperature float64
		topP        float64
		seed        int64
	)
	cmd := &cobra.Command{
		Use:   "infer --model HASH PROMPT",
		Short: "Complete a prompt with a model served on the network, streaming the answer",
		Long: `Send PROMPT to a running node's OpenAI-style /v1/completions endpoint (--api).
The node answers from its own copy of the model or forwards the request over
libp2p to the best replica (round-trip time, queue, errors, reputation),
hedging slow requests and failing over on errors. The completion streams to
stdout; latency and the serving node go to stderr.`,
		Args: exactArgs(1),
	}
	client := apiFlag(cmd, g)
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "model hash or a unique prefix of it, as a finished job prints it (see `gridmind models`)")
	f.IntVar(&maxTokens, "max-tokens", 64, "characters to generate")
	f.Float64Var(&temperature, "temperature", 0.8, "sampling temperature (0 = greedy)")
	f.Float64Var(&topP, "top-p", 0.95, "nucleus sampling mass")
	f.Int64Var(&seed, "seed", 0, "sampling seed (0 = random)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if model == "" {
			return gridmind.E(gridmind.KindInvalid, "infer", "--model is required (a model hash or a unique prefix; list them with: gridmind models)")
		}
		model = strings.ToLower(strings.TrimSpace(model))
		if err := checkModelArg("infer", model); err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		if len(model) != modelHashLen { // a prefix: ask the node what it knows
			rctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			model, _, err = resolveModel(rctx, c, "infer", model)
			cancel()
			if err != nil {
				return err
			}
		}
		body := map[string]any{"model": model, "prompt": args[0], "max_tokens": maxTokens, "temperature": temperature, "top_p": topP, "stream": true}
		if seed != 0 {
			body["seed"] = seed
		}
		data, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, c.Base+"/v1/completions", bytes.NewReader(data))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		c.Authorize(req)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return gridmind.E(gridmind.KindUnavailable, "infer", "no node answers at %s: %w", c.Base, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			var eb struct {
				Error struct{ Message string } `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&eb)
			return gridmind.E(api.KindOf("", resp.StatusCode), "infer", "%s: %s", resp.Status, eb.Error.Message)
		}
		out := cmd.OutOrStdout()
		fmt.Fprint(out, args[0])
		var first time.Duration
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			if line == "[DONE]" {
				break
			}
			var chunk struct {
				Choices []struct {
					Text string `json:"text"`
				} `json:"choices"`
			}
			if err := json.Unmarshal([]byte(line), &chunk); err != nil {
				return gridmind.E(gridmind.KindInternal, "infer", "bad stream chunk: %v", err)
			}
			for _, ch := range chunk.Choices {
				if first == 0 {
					first = time.Since(start)
				}
				fmt.Fprint(out, ch.Text)
			}
		}
		fmt.Fprintln(out)
		fmt.Fprintf(cmd.ErrOrStderr(), "first token %s, total %s\n", first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		return sc.Err()
	}
	return cmd
}

func newServeCmd(g *globals) *cobra.Command {
	var model string
	cmd := &cobra.Command{
		Use:   "serve --model HASH",
		Short: "Make a running node load a model by hash from its peers and serve it",
		Long: `Ask a running node (--api) to fetch the model whose weights hash to HASH from
peers that hold it (found through a DHT provider record), verify the hash,
and serve it: the node then advertises the model in the DHT and its queue
and latency in its heartbeats.`,
		Args: exactArgs(0),
	}
	client := apiFlag(cmd, g)
	cmd.Flags().StringVar(&model, "model", "", "model hash (or a unique prefix) to load and serve")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if model == "" {
			return gridmind.E(gridmind.KindInvalid, "serve", "--model is required")
		}
		c, err := client()
		if err != nil {
			return err
		}
		model, _, err := resolveModel(cmd.Context(), c, "serve", model)
		if err != nil {
			return err
		}
		if err := c.Post(cmd.Context(), "/api/v1/models/"+model, struct{}{}, nil); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "node %s now serves model %s\n", c.Base, model)
		return nil
	}
	return cmd
}
