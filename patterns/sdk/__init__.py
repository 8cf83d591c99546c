"""What node code imports: Table, Stream, State, Parameter, Connection."""
