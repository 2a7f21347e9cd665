package sink

import (
	"context"

	"github.com/pgtrail/pgtrail/migrations"
)

// MigrateTo applies the migrations up to version last only, as an older
// pgtrail would have, so that tests can check what a later one changes.
func (p *Postgres) MigrateTo(ctx context.Context, last int) ([]int, error) {
	all, err := migrations.All()
	if err != nil {
		return nil, err
	}
	var some []migrations.Migration
	for _, m := range all {
		if m.Version <= last {
			some = append(some, m)
		}
	}
	return p.migrate(ctx, some)
}

// IndexedColumns are the columns whose values the writer checks against
// maxIndexedBytes.
var IndexedColumns = indexedColumns
