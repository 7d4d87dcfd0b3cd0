// Command yiyun-vcsim serves govmomi's vSphere simulator (vcsim) as a test and demo peer.
//
// It builds a vCenter (VPX) model from flags, or from YIYUN_VCSIM_* environment variables
// when a flag is not given, listens on 127.0.0.1:PORT (0 = any free port), prints the SDK
// URL it serves as ONE line on stdout (https://user:pass@127.0.0.1:PORT/sdk), and serves
// until it receives SIGINT or SIGTERM. vcsim accepts any user and password.
//
// RetrievePropertiesEx pages by maxObjects, with ContinueRetrievePropertiesEx, as vCenter
// does (paging.go; govmomi 0.24's simulator alone returns everything in one result).
//
// The vAPI (REST) endpoint, including /rest/com/vmware/cis/tagging/..., is served too.
//
// Every VM has a config.createDate, as on vCenter (createdate.go), and POST
// /yiyun/vm/createDate sets one, for tests of the freeze rule.
//
// Model counts (as govmomi's simulator.Model defines them):
//
//	-dc         datacenters
//	-cluster    clusters per datacenter
//	-host       hosts per cluster
//	-standalone standalone hosts per datacenter
//	-vm         VMs per cluster (in its root resource pool) and per standalone host
//	-ds         datastores per datacenter, mounted on every host
//
// VM total = dc * (cluster + standalone) * vm.
// Build: tools/vcsim/build.sh (Debian's golang-go and golang-github-vmware-govmomi-dev).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // registers the vAPI (REST, tagging) endpoint
)

// envInt is the default of an int flag: YIYUN_VCSIM_<NAME> when set, else def.
func envInt(name string, def int) int {
	if v, ok := os.LookupEnv("YIYUN_VCSIM_" + name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			log.Fatalf("YIYUN_VCSIM_%s=%q is not an integer", name, v)
		}
		return n
	}
	return def
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("yiyun-vcsim: ")

	dc := flag.Int("dc", envInt("DC", 1), "datacenters (env YIYUN_VCSIM_DC)")
	cluster := flag.Int("cluster", envInt("CLUSTER", 1), "clusters per datacenter (env YIYUN_VCSIM_CLUSTER)")
	host := flag.Int("host", envInt("HOST", 3), "hosts per cluster (env YIYUN_VCSIM_HOST)")
	standalone := flag.Int("standalone", envInt("STANDALONE", 1), "standalone hosts per datacenter (env YIYUN_VCSIM_STANDALONE)")
	vm := flag.Int("vm", envInt("VM", 2), "VMs per cluster and per standalone host (env YIYUN_VCSIM_VM)")
	ds := flag.Int("ds", envInt("DS", 1), "datastores per datacenter (env YIYUN_VCSIM_DS)")
	port := flag.Int("port", envInt("PORT", 0), "port on 127.0.0.1; 0 picks a free one (env YIYUN_VCSIM_PORT)")
	plain := flag.Bool("http", os.Getenv("YIYUN_VCSIM_HTTP") == "1", "serve plain http instead of https (env YIYUN_VCSIM_HTTP=1)")
	flag.Parse()

	model := simulator.VPX()
	model.Datacenter = *dc
	model.Cluster = *cluster
	model.ClusterHost = *host
	model.Host = *standalone
	model.Machine = *vm
	model.Datastore = *ds

	if err := model.Create(); err != nil {
		log.Fatalf("creating the model: %v", err)
	}
	defer model.Remove() // the datastores' temporary directories
	installPaging(model.ServiceContent.PropertyCollector)
	stampCreateDates(time.Now().UTC())
	model.Service.HandleFunc(createDatePath, handleCreateDate)

	model.Service.RegisterEndpoints = true
	model.Service.Listen = &url.URL{Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(*port))}
	if !*plain {
		model.Service.TLS = new(tls.Config) // httptest's self-signed certificate for 127.0.0.1
	}
	server := model.Service.NewServer()
	defer server.Close()

	fmt.Println(server.URL.String())
	_ = os.Stdout.Sync()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
}
