package main

// govmomi 0.24's simulator ignores RetrieveOptions.maxObjects (it returns every object in one
// result, without a token) and does not implement ContinueRetrievePropertiesEx at all. A real
// vCenter pages, and yiyun's collector must page, so this wrapper adds vCenter's paging:
// RetrievePropertiesEx returns at most maxObjects objects plus a token, and
// ContinueRetrievePropertiesEx / CancelRetrievePropertiesEx take the token. Tokens belong to
// the session, as the simulator gives each session its own PropertyCollector instance.

import (
	"strconv"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type pagingCollector struct {
	simulator.PropertyCollector

	mu    sync.Mutex
	next  int
	pages map[string]pending
}

type pending struct {
	objects []types.ObjectContent
	size    int
}

// installPaging replaces the root PropertyCollector singleton with the paging wrapper.
func installPaging(ref types.ManagedObjectReference) {
	pc := &pagingCollector{}
	pc.Self = ref
	simulator.Map.Put(pc)
}

func (pc *pagingCollector) page(objects []types.ObjectContent, size int) *types.RetrieveResult {
	if size <= 0 || len(objects) <= size {
		return &types.RetrieveResult{Objects: objects}
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.pages == nil {
		pc.pages = make(map[string]pending)
	}
	pc.next++
	token := strconv.Itoa(pc.next)
	pc.pages[token] = pending{objects: objects[size:], size: size}
	return &types.RetrieveResult{Objects: objects[:size], Token: token}
}

func (pc *pagingCollector) RetrievePropertiesEx(ctx *simulator.Context, r *types.RetrievePropertiesEx) soap.HasFault {
	body := pc.PropertyCollector.RetrievePropertiesEx(ctx, r).(*methods.RetrievePropertiesExBody)
	if body.Res != nil {
		body.Res.Returnval = pc.page(body.Res.Returnval.Objects, int(r.Options.MaxObjects))
	}
	return body
}

func (pc *pagingCollector) ContinueRetrievePropertiesEx(ctx *simulator.Context, r *types.ContinueRetrievePropertiesEx) soap.HasFault {
	body := &methods.ContinueRetrievePropertiesExBody{}
	pc.mu.Lock()
	rest, ok := pc.pages[r.Token]
	delete(pc.pages, r.Token)
	pc.mu.Unlock()
	if !ok {
		body.Fault_ = simulator.Fault("unknown or finished token "+r.Token, &types.InvalidArgument{InvalidProperty: "token"})
		return body
	}
	result := pc.page(rest.objects, rest.size)
	body.Res = &types.ContinueRetrievePropertiesExResponse{Returnval: *result}
	return body
}

func (pc *pagingCollector) CancelRetrievePropertiesEx(ctx *simulator.Context, r *types.CancelRetrievePropertiesEx) soap.HasFault {
	pc.mu.Lock()
	delete(pc.pages, r.Token)
	pc.mu.Unlock()
	return &methods.CancelRetrievePropertiesExBody{Res: &types.CancelRetrievePropertiesExResponse{}}
}
