"""stpipe's ``stpipe.steps`` entry point: (class path, alias, is a pipeline)."""


def get_steps():
    return [("stcleanpkg.ColumnMedianCleanStep", "column_median_clean", False),
            ("stcleanpkg.MemberOffsetStep", "member_offset", False)]
