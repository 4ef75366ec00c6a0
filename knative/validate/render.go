package main

// Reading the inputs: a kustomization folder is rendered with kustomize's own Go API (what
// `kubectl kustomize` runs); a file or standard input is read as multi-document YAML.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// IsKustomization reports whether path is a folder holding a kustomization.
func IsKustomization(path string) bool {
	for _, name := range kustomizationNames {
		if st, err := os.Stat(filepath.Join(path, name)); err == nil && !st.IsDir() {
			return true
		}
	}
	return false
}

// Kustomize renders a kustomization folder as `kubectl kustomize` does; each document as JSON.
func Kustomize(dir string) ([][]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	var docs [][]byte
	for _, r := range m.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", dir, r.CurId(), err)
		}
		docs = append(docs, b)
	}
	return docs, nil
}

// SplitYAML reads multi-document YAML (or JSON) and gives each non-empty document as JSON.
func SplitYAML(r io.Reader) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs [][]byte
	for {
		chunk, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(chunk))) == 0 {
			continue
		}
		doc, err := yaml.YAMLToJSON(chunk)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		if string(doc) == "null" {
			continue
		}
		items, err := listItems(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		docs = append(docs, items...)
	}
}

// listItems expands a document that is a list of objects (a JSON array, or a kind: List) into
// its items; any other document is given back as it is.
func listItems(doc []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(doc)
	var items []json.RawMessage
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, err
		}
	} else {
		var list struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		if json.Unmarshal(trimmed, &list) != nil || list.Kind != "List" {
			return [][]byte{doc}, nil
		}
		items = list.Items
	}
	out := make([][]byte, len(items))
	for i, item := range items {
		out[i] = item
	}
	return out, nil
}

func stripComments(chunk []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(chunk, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// Load reads one input: "-" (standard input), a kustomization folder, or a YAML file.
func Load(input string, stdin io.Reader) ([]*Object, error) {
	var docs [][]byte
	var err error
	switch {
	case input == "-":
		docs, err = SplitYAML(stdin)
	case IsKustomization(input):
		docs, err = Kustomize(input)
	default:
		var f *os.File
		if f, err = os.Open(input); err != nil {
			return nil, err
		}
		defer f.Close()
		docs, err = SplitYAML(f)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", input, err)
	}
	source := input
	if source == "-" {
		source = "stdin"
	}
	var out []*Object
	for i, doc := range docs {
		o, err := newObject(source, doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i+1, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func newObject(source string, doc []byte) (*Object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		return nil, fmt.Errorf("not an object: %w", err)
	}
	if head.APIVersion == "" || head.Kind == "" {
		return nil, fmt.Errorf("no apiVersion or kind")
	}
	gv, err := schema.ParseGroupVersion(head.APIVersion)
	if err != nil {
		return nil, err
	}
	return &Object{Source: source, GVK: gv.WithKind(head.Kind), Name: head.Metadata.Name,
		Namespace: head.Metadata.Namespace, Raw: doc}, nil
}
