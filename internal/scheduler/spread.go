package scheduler

import (
	"cmp"
	"slices"
)

// spread holds the number of the service's live tasks per availability zone
// and per container instance, indexed densely. Victim selection decrements
// it as it picks, so that every pick re-evaluates the balance (ECS: "Sort the
// container instances by the largest number of running tasks for this service
// in the same Availability Zone as the instance ... favoring container
// instances with the largest number of running tasks for this service").
type spread struct {
	azNames   []string
	instNames []string // after the real instances: one pseudo-instance per AZ for unplaced tasks
	azCount   []int
	instCount []int
}

// victimClass orders scale-in victims: PENDING before RUNNING, then RUNNING
// tasks that are not (yet) healthy before healthy ones.
func victimClass(t *tinfo) int8 {
	switch {
	case t.pending:
		return 0
	case !t.healthy:
		return 1
	default:
		return 2
	}
}

// newerFirst is the final tie-break among victims on the same instance:
// newest CreatedAt first, then task id.
func newerFirst(a, b *tinfo) int {
	if c := cmp.Compare(b.created, a.created); c != 0 {
		return c
	}
	return cmp.Compare(a.t.ID, b.t.ID)
}

// selectVictims picks up to want tasks of cands to stop, in ECS's victim
// order, and returns them. Healthy RUNNING tasks consume one unit of *budget
// each (the minimumHealthyPercent floor) unless unlimited; picking stops when
// the budget runs out. cands is reordered. O(m log m) for m candidates.
func (sp *spread) selectVictims(cands []*tinfo, want int, budget *int, unlimited bool) []*tinfo {
	if want <= 0 || len(cands) == 0 {
		return nil
	}
	slices.SortFunc(cands, func(a, b *tinfo) int {
		if c := cmp.Compare(a.class, b.class); c != 0 {
			return c
		}
		if c := cmp.Compare(a.az, b.az); c != 0 {
			return c
		}
		if c := cmp.Compare(a.inst, b.inst); c != 0 {
			return c
		}
		return newerFirst(a, b)
	})
	var out []*tinfo
	for start := 0; start < len(cands) && want > 0; {
		class := cands[start].class
		end := start
		for end < len(cands) && cands[end].class == class {
			end++
		}
		if class == 2 && !unlimited && *budget <= 0 {
			break
		}
		out = sp.pickBalanced(cands[start:end], &want, budget, unlimited, class == 2, out)
		start = end
	}
	return out
}

type instGroup struct {
	inst  int
	tasks []*tinfo // newest first
	next  int
}

type azGroup struct {
	az    int
	insts *prioHeap[*instGroup]
}

// pickBalanced picks from one victim class (sorted by az, instance, newest)
// the task on the AZ with the most service tasks, then on the instance with
// the most, re-evaluating the counts after every pick.
func (sp *spread) pickBalanced(cl []*tinfo, want, budget *int, unlimited, consumes bool, out []*tinfo) []*tinfo {
	instFirst := func(a, b *instGroup) bool {
		ca, cb := sp.instCount[a.inst], sp.instCount[b.inst]
		if ca != cb {
			return ca > cb
		}
		return sp.instNames[a.inst] < sp.instNames[b.inst]
	}
	var azs []*azGroup
	for i := 0; i < len(cl); {
		az := cl[i].az
		var groups []*instGroup
		for i < len(cl) && cl[i].az == az {
			j := i
			for j < len(cl) && cl[j].az == az && cl[j].inst == cl[i].inst {
				j++
			}
			groups = append(groups, &instGroup{inst: cl[i].inst, tasks: cl[i:j]})
			i = j
		}
		azs = append(azs, &azGroup{az: az, insts: newPrioHeap(groups, instFirst)})
	}
	azh := newPrioHeap(azs, func(a, b *azGroup) bool {
		ca, cb := sp.azCount[a.az], sp.azCount[b.az]
		if ca != cb {
			return ca > cb
		}
		return sp.azNames[a.az] < sp.azNames[b.az]
	})
	for *want > 0 && azh.len() > 0 {
		if consumes && !unlimited && *budget <= 0 {
			break
		}
		ag := azh.top()
		ig := ag.insts.top()
		t := ig.tasks[ig.next]
		ig.next++
		out = append(out, t)
		*want--
		if consumes && !unlimited {
			*budget--
		}
		sp.remove(t)
		if ig.next == len(ig.tasks) {
			ag.insts.popTop()
		} else {
			ag.insts.fixTop()
		}
		if ag.insts.len() == 0 {
			azh.popTop()
		} else {
			azh.fixTop()
		}
	}
	return out
}

// remove takes a task that is about to be stopped out of the counts.
func (sp *spread) remove(t *tinfo) {
	sp.azCount[t.az]--
	sp.instCount[t.inst]--
}

// place chooses instances for k new tasks among the eligible instances (by
// instance index): the AZ with the fewest service tasks first, then the
// instance with the fewest, ties broken by AZ name and instance id. counts
// are the per-AZ and per-instance task counts the new tasks join.
func (sp *spread) place(k int, eligible []int, instAZ []int, azCount, instCount []int) []int {
	if k <= 0 || len(eligible) == 0 {
		return nil
	}
	type pAZ struct {
		az    int
		insts *prioHeap[int]
	}
	instFirst := func(a, b int) bool {
		if instCount[a] != instCount[b] {
			return instCount[a] < instCount[b]
		}
		return sp.instNames[a] < sp.instNames[b]
	}
	byAZ := map[int][]int{}
	var azOrder []int
	for _, i := range eligible {
		az := instAZ[i]
		if _, ok := byAZ[az]; !ok {
			azOrder = append(azOrder, az)
		}
		byAZ[az] = append(byAZ[az], i)
	}
	groups := make([]*pAZ, 0, len(azOrder))
	for _, az := range azOrder {
		groups = append(groups, &pAZ{az: az, insts: newPrioHeap(byAZ[az], instFirst)})
	}
	h := newPrioHeap(groups, func(a, b *pAZ) bool {
		if azCount[a.az] != azCount[b.az] {
			return azCount[a.az] < azCount[b.az]
		}
		return sp.azNames[a.az] < sp.azNames[b.az]
	})
	out := make([]int, 0, k)
	for range k {
		g := h.top()
		i := g.insts.top()
		out = append(out, i)
		instCount[i]++
		azCount[g.az]++
		g.insts.fixTop()
		h.fixTop()
	}
	return out
}

// Place chooses instances for k new tasks with the spread a service's
// starts get: the availability zone with the fewest of the group's tasks
// first, then the instance with the fewest, ties broken by zone name and
// instance id. Only ACTIVE, connected instances take new tasks. peers are
// the group's tasks that are not STOPPED (only their Instance is read).
// RunTask places its tasks with it. It returns no placement when no
// instance can take a task.
func Place(k int, instances []Instance, peers []Task) []Placement {
	var sp spread
	azIdx := map[string]int{}
	instIdx := make(map[string]int, len(instances))
	instAZ := make([]int, len(instances))
	var eligible []int
	for i, inst := range instances {
		az, ok := azIdx[inst.AZ]
		if !ok {
			az = len(sp.azNames)
			azIdx[inst.AZ] = az
			sp.azNames = append(sp.azNames, inst.AZ)
		}
		instAZ[i] = az
		instIdx[inst.ID] = i
		sp.instNames = append(sp.instNames, inst.ID)
		if inst.Connected && inst.Status == InstanceActive {
			eligible = append(eligible, i)
		}
	}
	azCount := make([]int, len(sp.azNames))
	instCount := make([]int, len(instances))
	for _, t := range peers {
		if i, ok := instIdx[t.Instance]; ok {
			instCount[i]++
			azCount[instAZ[i]]++
		}
	}
	var out []Placement
	for _, i := range sp.place(k, eligible, instAZ, azCount, instCount) {
		out = append(out, Placement{Instance: instances[i].ID, AZ: instances[i].AZ})
	}
	return out
}
