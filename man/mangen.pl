#!/usr/bin/perl
# SPDX-License-Identifier: BSD-3-Clause
# Copyright (c) mpidsm developers.
#
# mangen.pl: the man pages, made at build time from include/mpidsm.h's doc comments.
#
#   perl man/mangen.pl --header include/mpidsm.h --env ENV.roff --version V --out DIR
#
# writes DIR/man3/<function>.3 for every DSM_API function (the families that the
# DSM_*_DECLARE(T, S) macros expand included) and DIR/man7/mpidsm.7: the overview, the error
# contract, the consistency model, the error codes, every call by group, and the
# environment table (ENV.roff, from src/env_defs.h by `envdoc --man`). A function
# without a doc comment, or an atomic operation the atomics group does not describe,
# is an error: the header is the only place the API is documented, and every call
# gets a page. Only core Perl (Debian's perl-base).
use strict;
use warnings;

my %opt = (version => '0', date => '');
while (@ARGV) {
    my $k = shift @ARGV;
    $k =~ /^--(header|env|version|out|date)$/ or die "mangen.pl: bad argument '$k'\n";
    $opt{$1} = shift @ARGV;
}
defined $opt{$_} or die "mangen.pl: --$_ missing\n" for qw(header env out);

open my $fh, '<', $opt{header} or die "mangen.pl: $opt{header}: $!\n";
my @lines = <$fh>;
close $fh;

my (@groups, %group, @funcs, $file_doc);
my ($cur, $doc) = (undef, undef);    # current group; last doc comment not yet used

# Strip a doc comment's "/**", "*/" and leading " * ", keeping relative indentation.
sub comment_text {
    my @t = @_;
    s/^\s*\/\*\*\s?// for $t[0];
    s/\s*\*\/\s*$// for $t[-1];
    for (@t[1 .. $#t]) { s/^\s*\*(?: |$)//; }
    s/\s+$// for @t;
    return join("\n", @t) =~ s/^\s*\n//r;
}

my $i = 0;
my %macro;    # DSM_*_DECLARE => {protos: templates, doc: the family's comment}
my $plain;    # the last plain comment, for a declaring macro right after it
while ($i < @lines) {
    my $l = $lines[$i];
    if ($l =~ /^\s*\/\*\*/) {    # a doc comment, possibly one line
        my @c = ($l);
        while ($c[-1] !~ /\*\// && ++$i < @lines) { push @c, $lines[$i]; }
        $doc = comment_text(@c);
        if ($doc =~ s/^\\file\s+\S+\s*\n//) { $file_doc = $doc; $doc = undef; }
        elsif ($doc =~ /^\\defgroup\s+(\w+)\s+([^\n]*)\n?(.*)$/s) {
            my ($id, $title, $text) = ($1, $2, $3);
            $text =~ s/\s*\@\{\s*$//s;
            $cur = {id => $id, title => $title, text => $text, funcs => []};
            push @groups, $cur;
            $group{$id} = $cur;
            $doc = undef;
        }
        elsif ($doc =~ /^\s*\@[{}]\s*$/) { $doc = undef; }
        $i++;
        next;
    }
    # a plain comment right before a declaring macro documents the family it declares
    if ($l =~ /^\s*\/\*(?!\*)/) {
        my @c = ($l);
        while ($c[-1] !~ /\*\// && ++$i < @lines) { push @c, $lines[$i]; }
        $c[0] =~ s/^\s*\/\*/\/**/;
        $plain = comment_text(@c);
        $i++;
        next;
    }
    # #define DSM_<FAMILY>_DECLARE(T, S): every DSM_API prototype in it, kept as a
    # template (## pasting included) with the comment before it
    if ($l =~ /^#define (DSM_\w+_DECLARE)\(T, S\)/) {
        my $m = $1;
        my $body = '';
        while ($lines[$i] =~ /\\\s*$/ && ++$i < @lines) { $body .= $lines[$i]; }
        $body =~ s/\\\s*\n/ /g;
        $body =~ s/\s+/ /g;
        my @protos = map { s/^\s*DSM_API\s+//r =~ s/\s*$//r } grep { /\S/ } split /;/, $body;
        $macro{$m} = {protos => [map {"$_;"} @protos], doc => $plain // $doc};
        ($doc, $plain) = (undef, undef);
        $i++;
        next;
    }
    if ($l =~ /^(DSM_\w+_DECLARE)\((\w+),\s*(\w+)\)/ && $macro{$1}) {
        my ($m, $type, $sfx) = ($1, $2, $3);
        for my $t (@{$macro{$m}{protos}}) {
            (my $p = $t) =~ s/\s*##\s*S\s*##\s*/$sfx/g;
            $p =~ s/\s*##\s*S\b/$sfx/g;
            $p =~ s/\bT\b/$type/g;
            my ($name) = $p =~ /(\w+)\s*\(/;
            # an atomic operation the atomics group lists gets that text; any other
            # family the comment before its macro
            my ($op) = $m =~ /^DSM_ATOMIC(?:_FP)?_DECLARE$/ ? $name =~ /^dsm_atomic_(\w+)_\Q$sfx\E$/ : ();
            push @funcs, {name => $name, proto => $p, op => $op, type => $type, sfx => $sfx,
                          group => $cur, doc => $doc, family => $macro{$m}{doc}};
            push @{$cur->{funcs}}, $funcs[-1];
        }
        $doc = undef;
        $i++;
        next;
    }
    if ($l =~ /^DSM_API\b/) {
        my $p = $l;
        while ($p !~ /;/ && ++$i < @lines) { $p .= $lines[$i]; }
        $p =~ s/^DSM_API\s+//;
        $p =~ s/\s+/ /g;
        $p =~ s/\s*;\s*$/;/;
        my ($name) = $p =~ /(\w+)\s*\(/;
        die "mangen.pl: $name has no doc comment in $opt{header}\n" unless defined $doc;
        push @funcs, {name => $name, proto => $p, group => $cur, doc => $doc};
        push @{$cur->{funcs}}, $funcs[-1];
        $doc = undef;
        $i++;
        next;
    }
    # a doc comment belongs to the declaration right after it; anything else ends it
    $doc = undef if $l =~ /\S/ && $l !~ /^\s*(DSM_API|DSM_\w+_DECLARE)/;
    $plain = undef if $l =~ /\S/;
    $i++;
}
die "mangen.pl: no functions found in $opt{header}\n" unless @funcs;
die "mangen.pl: no \\file comment in $opt{header}\n" unless defined $file_doc;

# ---- doxygen text to roff ----

# Inline markup of one paragraph's text.
sub inline {
    my $s = shift;
    $s =~ s/\\/\x01/g;    # every backslash left is the author's: protect, escape at the end
    # a group's text is on the pages of its calls: point at the first one
    $s =~ s/\x01ref\s+(\w+)/exists $group{$1} && @{$group{$1}{funcs}}
        ? "\"$group{$1}{title}\" in $group{$1}{funcs}[0]{name}(3)" : $1/ge;
    $s =~ s/::(\w+)/\x02B$1\x02R/g;
    $s =~ s/\b(dsm_\w+|MPI_\w+)\(\)/\x02B$1\x02R()/g;
    $s =~ s/`([^`]+)`/\x02B$1\x02R/g;
    $s =~ s/\x01/\\e/g;
    $s =~ s/\x02([BR])/\\f$1/g;
    $s =~ s/-/\\-/g;
    return $s;
}

# A line of roff text: lines starting with . or ' would be requests.
sub textline { my $s = shift; $s =~ s/^([.'])/\\&$1/; return $s; }

# Doxygen prose (paragraphs, "- " lists, \par headings and paragraphs) to roff.
sub prose {
    my $text = shift;
    my @out;
    my @l = split /\n/, $text;
    my $para = '';
    my $flush = sub { push @out, '.PP', textline(inline($para)) if $para =~ /\S/; $para = ''; };
    my $in_list = 0;
    for (my $k = 0; $k < @l; $k++) {
        my $line = $l[$k];
        if ($line !~ /\S/) { $flush->(); $in_list = 0; next; }
        if ($line =~ /^\\par\s*(.*)$/) {
            my $rest = $1;
            $flush->();
            $in_list = 0;
            my $next = $k + 1 < @l ? $l[$k + 1] : '';
            # "\par Heading" over text below it, or "\par Some text." as a paragraph
            if ($rest ne '' && $rest !~ /[.:]$/ && $next !~ /^\s{2,}\S/ && length $rest < 60) {
                push @out, '.SS ' . inline($rest);
            } else {
                $para = $rest;
            }
            next;
        }
        if ($line =~ /^\s*- (.*)$/) {
            $flush->();
            push @out, '.IP \(bu 2' unless 0;
            $para = $1;
            $in_list = 1;
            next;
        }
        $line =~ s/^\s+//;
        $para .= ($para eq '' ? '' : ' ') . $line;
        if ($in_list && ($k + 1 == @l || $l[$k + 1] !~ /^\s+\S/)) {
            push @out, textline(inline($para));
            $para = '';
            $in_list = 0;
        }
    }
    if ($in_list && $para ne '') { push @out, textline(inline($para)); $para = ''; }
    $flush->();
    # '.IP' items were pushed before their text: merge "IP" and a following ".PP" away
    my @clean;
    for (my $k = 0; $k < @out; $k++) {
        push @clean, $out[$k];
        if ($out[$k] =~ /^\.IP/ && $k + 1 < @out && $out[$k + 1] eq '.PP') { $k++; }
    }
    return @clean;
}

# Split a function's doc into brief, body, params, return.
sub parse_doc {
    my $d = shift;
    my (%r, @params, $ret, @body);
    my @l = split /\n/, $d;
    my $mode = 'body';
    my $brief = '';
    for my $line (@l) {
        if ($line =~ /^\s*\\brief\s+(.*)$/) { $mode = 'brief'; $brief = $1; next; }
        if ($line =~ /^\s*\\param(?:\[[^\]]*\])?\s+(\S+)\s*(.*)$/) {
            push @params, [$1, $2];
            $mode = 'param';
            next;
        }
        if ($line =~ /^\s*\\return\s*(.*)$/) { $ret = $1; $mode = 'return'; next; }
        # "\brief ... \return ..." and "\par" on one line
        if ($line =~ /^\s*\\par\b/) { $mode = 'body'; push @body, $line =~ s/^\s+//r; next; }
        if ($mode eq 'brief') {
            if ($line !~ /\S/) { $mode = 'body'; next; }
            $brief .= " " . ($line =~ s/^\s+//r);
        } elsif ($mode eq 'param') {
            if ($line !~ /\S/) { $mode = 'body'; next; }
            $params[-1][1] .= " " . ($line =~ s/^\s+//r);
        } elsif ($mode eq 'return') {
            if ($line !~ /\S/) { $mode = 'body'; next; }
            $ret .= " " . ($line =~ s/^\s+//r);
        } else {
            push @body, $line;
        }
    }
    # inline "\return" or "\par" after a brief on one line
    for my $s (\$brief, \$ret) {
        next unless defined $$s;
        if ($$s =~ s/\s*\\par\s+(.*)$//) { push @body, "\\par $1"; }
        if ($$s =~ s/\s*\\return\s+(.*)$//) { $ret = $1; }
    }
    if ($brief eq '') {    # no \brief: the first paragraph is the brief
        my $b = join "\n", @body;
        ($brief, my $more) = split /\n\s*\n/, $b, 2;
        @body = defined $more ? split(/\n/, $more) : ();
    }
    return {brief => $brief, body => join("\n", @body), params => \@params, ret => $ret};
}

# The first sentence of a brief, for the NAME line.
sub short {
    my $b = shift;
    $b =~ s/\s+/ /g;
    $b =~ s/^(.*?[^.]\.)(\s|$).*/$1/;
    $b =~ s/\.$//;
    return $b;
}

my $date = $opt{date} || '';
sub header_lines {
    my ($name, $sec) = @_;
    return (".\\\" Generated from include/mpidsm.h by man/mangen.pl; do not edit.",
            ".TH " . uc($name) . " $sec \"$date\" \"mpidsm $opt{version}\" \"mpidsm manual\"",
            '.nh', '.ad l');    # no hyphens in identifiers, ragged right
}

sub write_page {
    my ($path, @l) = @_;
    open my $o, '>', $path or die "mangen.pl: $path: $!\n";
    print $o map { "$_\n" } @l;
    close $o or die "mangen.pl: $path: $!\n";
}

# The atomic operations as the atomics group lists them ("- `fetch_add`: ...").
my %atomic_what;
for my $g (@groups) {
    next unless $g->{id} eq 'atomics';
    for my $line (split /\n(?=\s*- `)/, $g->{text}) {
        next unless $line =~ /^\s*- ((?:`\w+`(?:, )?)+):\s*(.*?)\s*$/s;
        my ($ops, $what) = ("$1", "$2");
        $what =~ s/\s*\n\s*/ /g;
        $atomic_what{$_} = $what for $ops =~ /`(\w+)`/g;
    }
}

mkdir $opt{out};
mkdir "$opt{out}/man3";
mkdir "$opt{out}/man7";
for my $f (@funcs) {
    my $d;
    if ($f->{op}) {
        my $what = $atomic_what{$f->{op}}
            or die "mangen.pl: the atomics group does not describe `$f->{op}`\n";
        my ($args, $effect) = $what =~ /^\((.*?)\):\s*(.*)$/ or die "mangen.pl: $f->{op}?\n";
        $d = {brief => "atomic $f->{op} of the $f->{type} at a global pointer",
              body => "$f->{name}($args) on the $f->{type} at g: $effect",
              params => [], ret => undef};
        $d->{body} .= "\n\n" . $f->{family} if $f->{family};    # e.g. float's bit patterns
    } elsif ($f->{family}) { # a family member: its line in the family's list, or the
                             # family's first sentence, then the family's whole text
        my $fam = parse_doc($f->{family});
        my $text = join("\n\n", grep { /\S/ } $fam->{brief}, $fam->{body});
        (my $generic = $f->{name}) =~ s/_\Q$f->{sfx}\E(?=_nb$|$)/_S/;
        my ($what) = $text =~ /^\s*- \Q$generic\E:\s*(.*?)(?=\n\s*- |\n\s*\n|\z)/ms;
        my $brief = defined $what ? ($what =~ s/\s+/ /gr) . " ($f->{type} words)"
                                  : short($fam->{brief}) . " ($f->{type})";
        $d = {brief => $brief, body => $text, params => [], ret => $fam->{ret}};
    } else {
        $d = parse_doc($f->{doc});
    }
    my $g = $f->{group};
    my @p = header_lines($f->{name}, 3);
    push @p, '.SH NAME', "$f->{name} \\- " . inline(short($d->{brief}));
    push @p, '.SH SYNOPSIS', '.nf', '.B #include <mpidsm.h>', '.PP', textline(inline($f->{proto}) =~ s/\\-/-/gr), '.fi';
    push @p, '.SH DESCRIPTION', prose($d->{brief});
    push @p, prose($d->{body}) if $d->{body} =~ /\S/;
    if (@{$d->{params}}) {
        push @p, '.SH PARAMETERS';
        push @p, '.TP', '.I ' . $_->[0], textline(inline($_->[1])) for @{$d->{params}};
    }
    push @p, '.SH RETURN VALUE', textline(inline($d->{ret})) if defined $d->{ret};
    if ($g && $g->{text} =~ /\S/) {
        push @p, '.SH ' . uc(inline($g->{title}) =~ s/:.*//r), prose($g->{text});
    }
    my @see = map { $_->{name} } grep { $_ != $f && !$_->{op} } @{$g ? $g->{funcs} : []};
    if ($f->{op}) {
        @see = grep { $_ ne $f->{name} } map { "dsm_atomic_$_->{op}_$f->{sfx}" }
            grep { $_->{op} } @{$g->{funcs}};
        my %seen;
        @see = grep { !$seen{$_}++ } @see;
    }
    push @p, '.SH SEE ALSO', join(', ', map { "\\fB$_\\fR(3)" } @see, 'mpidsm') =~ s/\\fBmpidsm\\fR\(3\)$/\\fBmpidsm\\fR(7)/r;
    write_page("$opt{out}/man3/$f->{name}.3", @p);
}

# ---- mpidsm(7) ----
open my $ef, '<', $opt{env} or die "mangen.pl: $opt{env}: $!\n";
my @env = map { chomp; $_ } <$ef>;
close $ef;
my @m = header_lines('mpidsm', 7);
my ($intro, @pars) = split /\n(?=\\par )/, $file_doc;
$intro =~ s/^\\brief\s+mpidsm:\s*//;
my ($brief7, $rest7) = split /\n\n/, $intro, 2;
push @m, '.SH NAME', 'mpidsm \- ' . inline($brief7 =~ s/\s+/ /gr =~ s/\.$//r);
push @m, '.SH SYNOPSIS', '.nf', '.B #include <mpidsm.h>', '.PP',
    'mpicc prog.c $(pkg\-config \-\-cflags \-\-libs mpidsm)',
    'find_package(mpidsm) and mpidsm::mpidsm in CMake', 'dsmrun \-n 4 ./prog', 'dsm\-info [\-\-json]', '.fi';
push @m, '.SH DESCRIPTION', prose($rest7 // '');
for my $p (@pars) {
    my ($title, $body) = $p =~ /^\\par\s+([^\n]*)\n(.*)$/s;
    push @m, '.SH ' . uc($title =~ s/^The //r), prose($body);
}
push @m, '.SH ERRORS', '.PP', 'Result codes (\fBdsm_strerror\fR(3) names them):';
my $in_enum = 0;
for (@lines) {
    $in_enum = 1 if /^enum dsm_err/;
    next unless $in_enum;
    last if /^\};/;
    push @m, '.TP', ".B $1", textline(inline($3)) if /^\s*(DSM_\w+)\s*=\s*(\d+),\s*\/\*\*<\s*(.*?)\s*\*\//;
}
push @m, '.SH FUNCTIONS';
for my $g (@groups) {
    next unless @{$g->{funcs}};
    push @m, '.SS ' . inline($g->{title});
    my @names = map { $_->{name} } @{$g->{funcs}};
    push @m, '.PP', join(",\n", map { "\\fB$_\\fR(3)" } @names);
}
push @m, '.SH ENVIRONMENT', @env;
push @m, '.SH SEE ALSO',
    'The README and docs/ of the source tree; \fBdsm\-info\fR prints what an installation '
    . 'can do and every setting; \fBdsmrun\fR launches programs.';
write_page("$opt{out}/man7/mpidsm.7", @m);
printf "mangen.pl: %d pages in man3, mpidsm.7 in man7\n", scalar @funcs;
