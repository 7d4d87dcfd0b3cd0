package main

// vCenter stamps every VM's config.createDate when it creates it; govmomi 0.24's simulator
// never does, so the freeze rule (no new resources after a date) would see nothing. This
// stamps the model's VMs with the time the simulator started, and serves a control endpoint
// that tests and the demo use to give a VM the creation date it would have had:
//
//	POST /yiyun/vm/createDate  vm=<moref>&date=<RFC 3339>   → 204; 404 unknown VM; 400 bad date

import (
	"net/http"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const createDatePath = "/yiyun/vm/createDate"

func stampCreateDates(at time.Time) {
	for _, entity := range simulator.Map.All("VirtualMachine") {
		vm, ok := entity.(*simulator.VirtualMachine)
		if ok && vm.Config != nil && vm.Config.CreateDate == nil {
			stamp := at
			vm.Config.CreateDate = &stamp
		}
	}
}

func handleCreateDate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST vm=<moref>&date=<RFC 3339>", http.StatusMethodNotAllowed)
		return
	}
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: r.FormValue("vm")}
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		http.Error(w, "no such VirtualMachine", http.StatusNotFound)
		return
	}
	date, err := time.Parse(time.RFC3339, r.FormValue("date"))
	if err != nil {
		http.Error(w, "date must be RFC 3339, e.g. 2023-05-01T08:00:00Z", http.StatusBadRequest)
		return
	}
	date = date.UTC()
	simulator.Map.WithLock(vm, func() { vm.Config.CreateDate = &date })
	w.WriteHeader(http.StatusNoContent)
}
