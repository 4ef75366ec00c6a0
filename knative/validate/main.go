// Command eas-knative-validate checks the EAS manifests with Knative's own code: every Serving
// and Eventing object is decoded into Knative's Go types and put through SetDefaults and
// Validate as the admission webhooks do; every event of a catalogue is routed through the
// Broker's Triggers with Eventing's filter code. See README.md.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"

	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

const usage = `usage: eas-knative-validate [flags] INPUT...
       eas-knative-validate render FOLDER

INPUT is a kustomization folder (rendered with kustomize's Go API), a YAML file, or - for
standard input (multi-document YAML). Exit status: 0 when every object is admitted and every
event routed as expected, 1 when not, 2 when an input cannot be read.

render prints the documents of a kustomization folder as a JSON list, in kustomize's order.

flags:
`

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// Report is what --json writes.
type Report struct {
	Objects      []ObjectReport `json:"objects"`
	Findings     []Finding      `json:"findings"`
	Routes       []Route        `json:"routes"`
	IdleTriggers []string       `json:"idle_triggers"`
	Cycles       []string       `json:"cycles"`
	Errors       int            `json:"errors"`
	Warnings     int            `json:"warnings"`
	RouteErrors  int            `json:"route_errors"`
}

// ObjectReport is one object checked.
type ObjectReport struct {
	Source    string `json:"source"`
	Kind      string `json:"kind"`
	Group     string `json:"group"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Checked   string `json:"checked"` // serving, eventing, kubernetes or "" (not checked)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "render" {
		return render(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("eas-knative-validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var configs stringList
	fs.Var(&configs, "config", "YAML file of ConfigMaps of knative-serving or knative-eventing (config-defaults, config-features, config-autoscaler, config-br-defaults, ...) to validate against, instead of a stock install's; repeatable")
	events := fs.String("events", "", "JSON catalogue of the events the project sends, to route through the Broker's Triggers")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file (- for standard output, then no table)")
	allowExternal := fs.Bool("allow-external-refs", false, "a reference to an object that is not among the inputs is a warning, not an error")
	quiet := fs.Bool("q", false, "print only problems and the summary")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	var maps []*corev1.ConfigMap
	for _, path := range configs {
		objs, err := Load(path, stdin)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		for _, o := range objs {
			cm := &corev1.ConfigMap{}
			if o.GVK.Kind != "ConfigMap" || json.Unmarshal(o.Raw, cm) != nil {
				fmt.Fprintf(stderr, "%s: %s is not a ConfigMap\n", path, o.Key())
				return 2
			}
			maps = append(maps, cm)
		}
	}
	cluster, err := NewCluster(maps)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	var catalogue *Catalogue
	if *events != "" {
		if catalogue, err = ReadCatalogue(*events); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}
	text := stdout
	if *jsonOut == "-" {
		text = io.Discard
	}

	report := Report{Findings: []Finding{}, Routes: []Route{}, IdleTriggers: []string{}, Cycles: []string{}}
	var all []*Object
	for _, input := range fs.Args() {
		objs, err := Load(input, stdin)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		counts := map[string]int{}
		bad := 0
		for _, o := range objs {
			found := cluster.Admit(o)
			if t, ok := o.Typed.(*eventingv1.Trigger); ok {
				found = append(found, SkippedFilters(o, t)...)
			}
			report.Findings = append(report.Findings, found...)
			for _, f := range found {
				if f.Level == "error" {
					bad++
				}
			}
			counts[o.Checked]++
			report.Objects = append(report.Objects, ObjectReport{Source: o.Source, Kind: o.GVK.Kind,
				Group: o.GVK.Group, Namespace: o.Namespace, Name: o.Name, Checked: o.Checked})
		}
		all = append(all, objs...)
		if !*quiet {
			fmt.Fprintf(text, "%s: %d objects (%d Serving, %d Eventing, %d Kubernetes, %d other), %d errors\n",
				input, len(objs), counts["serving"], counts["eventing"], counts["kubernetes"], counts[""], bad)
		}
	}

	refFindings, edges := References(all, *allowExternal)
	report.Findings = append(report.Findings, refFindings...)
	for _, c := range Cycles(edges) {
		desc := DescribeCycle(c)
		report.Cycles = append(report.Cycles, desc)
		report.Findings = append(report.Findings, Finding{Source: "references", Kind: "cycle", Name: c[0].From,
			Level: "warning", Message: "no object on this circle gets its address first, so " +
				"each is admitted without what it waits for and completed later: " + desc})
	}

	if catalogue != nil {
		triggers, ns, name, err := brokerTriggers(all, catalogue.Broker)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		report.Routes = RouteEvents(triggers, ns, name, catalogue.Events)
		report.IdleTriggers = IdleTriggers(triggers, ns, name, report.Routes)
		for _, t := range report.IdleTriggers {
			report.Findings = append(report.Findings, Finding{Source: "routing", Kind: "Trigger", Namespace: ns,
				Name: t, Level: "warning", Message: "no event of the catalogue reaches this Trigger"})
		}
		for _, r := range report.Routes {
			if r.Problem != "" {
				report.RouteErrors++
			}
		}
		if !*quiet {
			printRoutes(text, report.Routes)
		}
	}

	for _, f := range report.Findings {
		if f.Level == "error" {
			report.Errors++
		} else {
			report.Warnings++
		}
		fmt.Fprintln(text, f)
	}
	for _, r := range report.Routes {
		if r.Problem != "" {
			fmt.Fprintf(text, "error: routing: %s (%s): %s\n", r.Name, r.Type, r.Problem)
		}
	}
	fmt.Fprintf(text, "%d objects checked with Knative's code, %d errors, %d warnings; %d events routed, %d not as expected\n",
		len(report.Objects), report.Errors, report.Warnings, len(report.Routes), report.RouteErrors)

	if *jsonOut != "" {
		b, _ := json.MarshalIndent(report, "", "  ")
		b = append(b, '\n')
		if *jsonOut == "-" {
			_, err = stdout.Write(b)
		} else {
			err = os.WriteFile(*jsonOut, b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
	}
	if report.Errors > 0 || report.RouteErrors > 0 {
		return 1
	}
	return 0
}

// brokerTriggers gives the (defaulted) Triggers of all inputs, once each, and the Broker the
// events are sent to: the named one ("namespace/name"), else the only Broker of the inputs.
func brokerTriggers(objs []*Object, want string) ([]*eventingv1.Trigger, string, string, error) {
	seen := map[string]bool{}
	var triggers []*eventingv1.Trigger
	brokers := map[string]bool{}
	for _, o := range objs {
		switch t := o.Typed.(type) {
		case *eventingv1.Trigger:
			if !seen[o.Key()] {
				seen[o.Key()] = true
				triggers = append(triggers, t)
			}
		case *eventingv1.Broker:
			brokers[o.Namespace+"/"+o.Name] = true
		}
	}
	if want == "" {
		if len(brokers) != 1 {
			return nil, "", "", fmt.Errorf("events: the inputs hold %d Brokers; name one in the catalogue's \"broker\"", len(brokers))
		}
		for b := range brokers {
			want = b
		}
	} else if !brokers[want] {
		return nil, "", "", fmt.Errorf("events: Broker %s is not among the inputs", want)
	}
	ns, name, _ := strings.Cut(want, "/")
	return triggers, ns, name, nil
}

func printRoutes(w io.Writer, routes []Route) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTYPE\tTASKTYPE\tTRIGGERS\tSUBSCRIBER\tEXPECTED\tOK")
	for _, r := range routes {
		ok := "yes"
		if r.Problem != "" {
			ok = "NO: " + r.Problem
		}
		expected := r.Expect
		triggers, subs := strings.Join(r.Triggers, ","), strings.Join(r.Subscribers, ",")
		if triggers == "" {
			triggers, subs = "-", "-"
		}
		task := r.TaskType
		if task == "" {
			task = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Type, task, triggers, subs, expected, ok)
	}
	tw.Flush()
	reasons := map[string][]string{}
	var order []string
	for _, r := range routes {
		if r.Reason != "" {
			if _, ok := reasons[r.Reason]; !ok {
				order = append(order, r.Reason)
			}
			reasons[r.Reason] = append(reasons[r.Reason], r.Name)
		}
	}
	for _, reason := range order {
		fmt.Fprintf(w, "unrouted on purpose (%s): %s\n", strings.Join(reasons[reason], ", "), reason)
	}
}

func render(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || !IsKustomization(args[0]) {
		fmt.Fprint(stderr, usage)
		return 2
	}
	docs, err := Kustomize(args[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	list := make([]json.RawMessage, len(docs))
	for i, d := range docs {
		list[i] = d
	}
	b, _ := json.MarshalIndent(list, "", "  ")
	fmt.Fprintln(stdout, string(b))
	return 0
}
