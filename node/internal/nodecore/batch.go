package nodecore

// Steps handles inputs that arrived together as Step would one after
// another, except that a View input followed by another View only notes
// its departure: the run's last View refreshes the view once for them all.
// Refreshing the view costs O(N), and a forming cluster of N nodes sends
// each node N changes, so one refresh per change made formation O(N²) per
// node. A departure of the leader is acted on at the run's end, in the
// same Ready, so batching delays nothing. The Ready lists the effects of
// all the inputs in order; its Wake is the last input's.
func (m *Machine) Steps(ins []Input) Ready {
	var rd Ready
	for i, in := range ins {
		if in.Kind == View && i+1 < len(ins) && ins[i+1].Kind == View {
			if in.How != "" {
				m.noteDeparture(in.From, in.How, in.Known, in.Now)
			}
			continue
		}
		r := m.Step(in)
		rd.Effects = append(rd.Effects, r.Effects...)
		rd.Wake = r.Wake
	}
	return rd
}
